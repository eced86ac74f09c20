package abi

import "testing"

func TestSignatures(t *testing.T) {
	tests := []struct {
		name string
		fs   []Func
		want string
	}{
		{ExportEval, Exports(), "(i32, i32) -> (i32)"},
		{ExportManifest, Exports(), "() -> (i64)"},
		{ExportInitialize, Exports(), "() -> ()"},
		{ImportLog, Imports(), "(i32, i32, i32) -> ()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range tt.fs {
				if f.Name == tt.name {
					if got := f.Signature.String(); got != tt.want {
						t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
					}
					return
				}
			}
			t.Errorf("%s not in the table", tt.name)
		})
	}
	required := 0
	for _, f := range Exports() {
		if f.Required {
			required++
		}
	}
	if required != 4 {
		t.Errorf("%d required exports, want 4", required)
	}
	s := Signature{[]ValueType{I32}, nil}
	if !s.Equal(Signature{[]ValueType{I32}, []ValueType{}}) || s.Equal(Signature{[]ValueType{I64}, nil}) {
		t.Error("Equal")
	}
}
