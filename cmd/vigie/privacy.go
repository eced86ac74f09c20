package main

// vigie audit verify and vigie state export|erase: the audit trail and the
// rights of the people the data is about (docs/privacy.md).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigie-edu/vigie/engine/audit"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/privacy"
	"github.com/vigie-edu/vigie/engine/state"
)

// pipelineArg is the optional FILE of the audit and state commands.
func pipelineArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return defaultPipeline
}

func newAuditCmd(stdout, stderr io.Writer) *cobra.Command {
	verify := &cobra.Command{
		Use:   "verify [FILE]",
		Short: "Check that a pipeline's audit log is whole: no entry edited, inserted or deleted",
		Long: `Check the audit log of a pipeline (FILE defaults to pipeline.toml; --log
names a log directly): every entry's number, its link to the previous
entry (SHA-256), and the last entry against the head file beside the log.
Exit 0 when whole; 1 naming the first line found wrong.`,
		Args: cobra.MaximumNArgs(1),
	}
	logPath := verify.Flags().String("log", "", "the audit log to verify, instead of the pipeline's")
	verify.RunE = do(func(_ *cobra.Command, args []string) int {
		path := *logPath
		if path == "" {
			cfg, err := config.Load(pipelineArg(args))
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitFailed
			}
			path = cfg.AuditLog
		}
		n, err := audit.Verify(path)
		if err != nil {
			fmt.Fprintf(stderr, "audit log broken: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "%s: %d entries, chain whole\n", path, n)
		return exitOK
	})
	return newGroupCmd("audit", "The audit trail of runs and erasures: verify",
		`Every run, and every erasure, appends an entry to the pipeline's audit
log ([pipeline] audit_log; by default next to the state). Entries are
chained by SHA-256.`, verify)
}

func newStateCmd(stdout, stderr io.Writer) *cobra.Command {
	keyFlag := func(cmd *cobra.Command) *string {
		k := cmd.Flags().String("key", "", "the student: a clear identifier (needs the pseudonymisation key) or a pseudonym (ps_...)")
		_ = cmd.MarkFlagRequired("key")
		return k
	}
	export := &cobra.Command{
		Use:   "export --key K [FILE]",
		Short: "Print as JSON everything the pipeline's state keeps about one student",
		Args:  cobra.MaximumNArgs(1),
	}
	exportKey := keyFlag(export)
	export.RunE = do(func(_ *cobra.Command, args []string) int {
		return stateExport(pipelineArg(args), *exportKey, stdout, stderr)
	})
	erase := &cobra.Command{
		Use:   "erase --key K [FILE]",
		Short: "Remove one student from the pipeline's state, recorded in the audit trail",
		Args:  cobra.MaximumNArgs(1),
	}
	eraseKey := keyFlag(erase)
	erase.RunE = do(func(_ *cobra.Command, args []string) int {
		return stateErase(pipelineArg(args), *eraseKey, stdout, stderr)
	})
	return newGroupCmd("state", "A student's data in the kept state: export, erase",
		`The keyed state (state_dir) keeps each student's timeline and the alerts
announced. export prints everything kept about one student, erase removes
it (access and erasure requests, GDPR articles 15 and 17). With
pseudonymisation, --key takes a clear identifier when the key is available
(key_env or key_file; during a rotation the previous key's pseudonyms are
looked up too), or a pseudonym. Outputs already delivered are not touched.`,
		export, erase)
}

// subjectKeys returns the state keys of a student given on the command
// line: a pseudonym as is; a clear identifier made pseudonyms with the
// pipeline's keys; anything, as is, without pseudonymisation.
// The key id is returned when a key was used.
func subjectKeys(cfg *config.Pipeline, k string) ([]string, string, error) {
	if k == "" {
		return nil, "", errors.New("--key must not be empty")
	}
	if privacy.IsPseudonym(k) {
		return []string{k}, "", nil
	}
	ks, err := pipeline.LoadKeys(cfg, time.Now())
	if err != nil {
		return nil, "", fmt.Errorf("%q is not a pseudonym, and the pseudonymisation key to make it one is not available: %w", k, err)
	}
	if ks == nil {
		return []string{k}, "", nil
	}
	return ks.Pseudonyms(k), ks.Current.ID(), nil
}

// openState opens the state of the pipeline at file.
func openState(file string) (*config.Pipeline, *state.Store, error) {
	cfg, err := config.Load(file)
	if err != nil {
		return nil, nil, err
	}
	if cfg.StateDir == "" {
		return nil, nil, fmt.Errorf("%s: pipeline %q keeps no state ([pipeline] state_dir)", file, cfg.Name)
	}
	if _, err := os.Stat(cfg.StateDir); err != nil {
		return nil, nil, fmt.Errorf("%s: no state kept yet: %w", file, err)
	}
	s, err := state.Open(cfg.StateDir, state.Options{MemoryBytes: 16 << 20})
	if err != nil {
		return nil, nil, fmt.Errorf("%w (one process at a time opens a state store: is the pipeline running?)", err)
	}
	return cfg, s, nil
}

func stateExport(file, k string, stdout, stderr io.Writer) int {
	cfg, s, err := openState(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer s.Close()
	keys, _, err := subjectKeys(cfg, k)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	out := struct {
		Pipeline string         `json:"pipeline"`
		Subject  string         `json:"subject"`
		Keys     []string       `json:"keys"`
		Records  []state.Record `json:"records"`
	}{Pipeline: cfg.Name, Subject: k, Keys: keys, Records: []state.Record{}}
	for _, key := range keys {
		recs, err := s.Export(key)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		out.Records = append(out.Records, recs...)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return exitOK
}

func stateErase(file, k string, stdout, stderr io.Writer) int {
	cfg, s, err := openState(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer s.Close()
	keys, keyID, err := subjectKeys(cfg, k)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	total := 0
	for _, key := range keys {
		n, err := s.Erase(key)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		total += n
		// The trail names the pseudonym, never the clear identifier.
		if _, _, err := audit.Append(cfg.AuditLog, audit.Entry{Event: audit.EventErase, Pipeline: cfg.Name, PipelineFile: cfg.File, KeyID: keyID, Erased: &audit.Erasure{Key: key, Records: n}}); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
	}
	fmt.Fprintf(stdout, "erased %d records of %d key(s) from %s; recorded in %s\n", total, len(keys), cfg.StateDir, cfg.AuditLog)
	return exitOK
}
