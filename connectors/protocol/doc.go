// Package protocol is the contract between the Vigie engine and its
// connectors, version 2 (see Version).
//
// A connector is a Source (it reads the outside into Arrow record batches)
// or a Sink (it writes them out). Both declare their options once, in a
// Spec; the engine checks a pipeline's options against it (Spec.Check)
// before any data moves and hands the connector a Config. A source emits
// every batch with a Position after it, so that a read can resume after a
// crash; rows it cannot read go to the engine as DeadLetters, never
// dropped. A sink's Writer may implement Flusher to make its output
// durable before Close. Errors that must keep their meaning across the
// process boundary wrap ErrConfig, ErrNotFound or ErrTemporary (WithKind
// marks an error without changing its text).
//
// The same implementation runs in the engine's process or in a plugin
// process of its own: connectors/sdk serves a Registry from a plugin's
// main (sdk.Serve) and has the helpers sources are written with;
// connectors/conformance is the suite every connector runs. How batches
// cross the process boundary is the engine's business (internal/transport)
// and not part of this contract.
package protocol
