// Package protocol is the contract between the Vigie engine and its
// connectors, version 1.
//
// A connector is a Source (it produces Arrow record batches) or a Sink (it
// consumes them). Connectors implement the small Go interfaces of this
// package; the same implementation runs in-process (tests, benchmarks) or in
// its own process under hashicorp/go-plugin, where batches cross the process
// boundary as Arrow Flight streams over gRPC:
//
//	spec, validate   DoAction("spec" | "specs" | "validate")
//	schema           GetSchema(descriptor = request JSON)
//	read a source    DoGet(ticket = request JSON) -> FlightData stream
//	write a sink     DoPut(first message's descriptor = request JSON)
//
// Record batches whose body goes inline and is larger than
// MessageTargetBytes are sliced before they cross, so no gRPC message
// exceeds the transport's limits whatever batch_rows is, and joined back
// on the other side: a batch keeps its size across the boundary.
// Messages that carry only app_metadata (no Arrow data) carry dead-letter
// rows and, later, positions; see wire.go.
//
// Between Vigie processes on Linux, the Arrow bodies of DoGet and DoPut go
// through a shared memory ring the host offers in the call's gRPC metadata
// ("vigie-ring"); the FlightData messages still carry everything else.
// Peers without the capability ignore the offer and get every body inline;
// see ring.go.
package protocol
