// Command echo is a test rule that copies each of its seven inputs, one
// per ABI type, to an output of the same type, nulls included.
package main

import "github.com/vigie-edu/vigie/rules/sdk/vigie"

const manifest = `{"abi": 1, "name": "echo", "version": "0.1.0", "kind": "map",
  "inputs": [
    {"name": "b", "type": "bool"}, {"name": "i", "type": "int32"},
    {"name": "l", "type": "int64"}, {"name": "f", "type": "float64"},
    {"name": "s", "type": "utf8"}, {"name": "ts", "type": "timestamp_us"},
    {"name": "d", "type": "date32"}],
  "outputs": [
    {"name": "b_out", "type": "bool"}, {"name": "i_out", "type": "int32"},
    {"name": "l_out", "type": "int64"}, {"name": "f_out", "type": "float64"},
    {"name": "s_out", "type": "utf8"}, {"name": "ts_out", "type": "timestamp_us"},
    {"name": "d_out", "type": "date32"}]}`

func init() { vigie.Register(vigie.Rule{Manifest: manifest, Eval: eval}) }

func copyCol[T any](in vigie.Column[T], out vigie.OutColumn[T]) {
	for r := range in.Len() {
		if !in.IsNull(r) {
			out.Set(r, in.Value(r))
		}
	}
}

func eval(in *vigie.Input, out *vigie.Output) error {
	copyCol(in.Bool(0), out.Bool(0))
	copyCol(in.Int32(1), out.Int32(1))
	copyCol(in.Int64(2), out.Int64(2))
	copyCol(in.Float64(3), out.Float64(3))
	s, so := in.Utf8(4), out.Utf8(4)
	for r := range s.Len() {
		if !s.IsNull(r) {
			so.Set(r, s.Value(r))
		}
	}
	copyCol(in.TimestampUS(5), out.TimestampUS(5))
	copyCol(in.Date32(6), out.Date32(6))
	return nil
}

func main() {}
