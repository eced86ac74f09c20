package wasmhost

import (
	"log/slog"
	"reflect"
	"testing"
	"time"
)

// TestConfigsAreImmutable: every With… method returns a changed copy and
// leaves its receiver as it was, so that a config can be shared and
// specialised (wazero's model).
func TestConfigsAreImmutable(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	// a list with room to grow: an append without a copy would share it
	replace := NewBindConfig().WithReplace("a", "b", "c").WithReplace("d")
	tests := []struct {
		name        string
		with        func() any
		wantChanged any
	}{
		{"runtime cache dir", func() any { return NewRuntimeConfig().WithCacheDir("/tmp/x") },
			RuntimeConfig{cacheDir: "/tmp/x", cacheDirSet: true}},
		{"runtime logger", func() any { return NewRuntimeConfig().WithLogger(logger) },
			RuntimeConfig{logger: logger}},
		{"runtime memory", func() any { return NewRuntimeConfig().WithMemoryLimitPages(9) },
			RuntimeConfig{memoryPages: 9}},
		{"load sha256", func() any { return NewLoadConfig().WithSHA256(" ABC ") },
			LoadConfig{expectSHA256: "abc"}},
		{"bind replace", func() any { return replace.WithReplace("e") },
			BindConfig{replace: []string{"a", "b", "c", "d", "e"}}},
		{"bind provenance", func() any { return NewBindConfig().WithProvenanceColumns(true) },
			BindConfig{provColumns: true, provDict: true}},
		{"instance params", func() any { return NewInstanceConfig().WithParams(map[string]any{"k": 1}) },
			InstanceConfig{params: map[string]any{"k": 1}}},
		{"instance limits", func() any { return NewInstanceConfig().WithLimits(Limits{Timeout: time.Second}) },
			InstanceConfig{limits: Limits{Timeout: time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.with(); !reflect.DeepEqual(got, tt.wantChanged) {
				t.Errorf("With… = %+v, want %+v", got, tt.wantChanged)
			}
		})
	}
	// The receiver of WithReplace keeps its own list, even when the two
	// copies are extended differently.
	x := replace.WithReplace("x")
	y := replace.WithReplace("y")
	if !reflect.DeepEqual(replace.replace, []string{"a", "b", "c", "d"}) || x.replace[4] != "x" || y.replace[4] != "y" {
		t.Errorf("WithReplace shares its list: base %v, x %v, y %v", replace.replace, x.replace, y.replace)
	}
	if !reflect.DeepEqual(NewRuntimeConfig(), RuntimeConfig{}) || !reflect.DeepEqual(NewBindConfig(), BindConfig{}) {
		t.Error("a New…Config is not the zero value")
	}
}
