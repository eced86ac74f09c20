package main

// vigie console: runs a pipeline (by default pipeline.toml, the
// early-warning job), loads its outputs into the console's store and
// serves the console (package console) until interrupted.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigie-edu/vigie/console"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/metrics"
)

// demoPassword is the password of every --demo account.
const demoPassword = "demo"

// consoleHook, when set (tests), is called once the console serves the
// run's outputs, with its address and a function that stops it.
var consoleHook func(addr string, stop func())

type consoleFlags struct {
	common
	demo      bool
	users     string
	listen    string
	listenAny bool
	db        string
	noRun     bool
}

func newConsoleCmd(stdout, stderr io.Writer) *cobra.Command {
	f := &consoleFlags{}
	cmd := &cobra.Command{
		Use:   "console [FILE]",
		Short: "Run a pipeline and open the web console over its outputs",
		Long: `Run a pipeline (default pipeline.toml, the early-warning job), load its
outputs into the console's store (an SQLite file) and serve the web console:
open alerts and student timelines for teaching teams, aggregates for
steering, the pipeline graph and dead letters for data engineers.

--demo creates one account per role on the bundled academy (password
"demo"): admin, steering, and teacher-SCHOOL for each school. Otherwise
--users names a CSV file of accounts (name,role,school,bcrypt_hash).

The console listens on 127.0.0.1:8080; a non-loopback --listen needs
--listen-remote (and TLS in front of it: cookies are Secure only over TLS).`,
		Args: cobra.MaximumNArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) int {
			file := defaultPipeline
			if len(args) == 1 {
				file = args[0]
			}
			return cmdConsole(f, file, stdout, stderr)
		}),
	}
	fs := cmd.Flags()
	f.common.register(fs)
	fs.BoolVar(&f.demo, "demo", false, "create demo accounts (admin, steering, teacher-SCHOOL; password \"demo\")")
	fs.StringVar(&f.users, "users", "", "CSV file of accounts: name,role,school,bcrypt_hash")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address to serve the console on (loopback unless --listen-remote)")
	fs.BoolVar(&f.listenAny, "listen-remote", false, "allow a non-loopback --listen")
	fs.StringVar(&f.db, "db", "", "the console's SQLite store (default: out/console.db beside the pipeline file)")
	fs.BoolVar(&f.noRun, "no-run", false, "load the outputs of an earlier run instead of running the pipeline")
	return cmd
}

func cmdConsole(f *consoleFlags, file string, stdout, stderr io.Writer) int {
	ctx, stop, release := pipeline.OnSignals(context.Background(), func(os.Signal, int) {}, os.Interrupt, syscall.SIGTERM)
	defer release()
	if !f.demo && f.users == "" {
		fmt.Fprintln(stderr, "vigie console: no accounts: give --demo or --users FILE")
		return exitUsage
	}
	if err := metrics.CheckAddr(f.listen, f.listenAny); err != nil {
		fmt.Fprintln(stderr, "--listen:", err)
		return exitUsage
	}
	f.common.stop = stop
	e, err := f.common.open(ctx, file, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer e.close(context.WithoutCancel(ctx))
	plan, err := e.prepare(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer plan.Close(context.WithoutCancel(ctx))
	watch := console.NewWatch(e.cfg, e.host.Restarts)
	inputs := console.InputsFrom(e.cfg, func(stage, col string) bool {
		s := plan.Schema(stage)
		return s != nil && len(s.FieldIndices(col)) > 0
	})
	db := f.db
	if db == "" {
		db = filepath.Join(e.cfg.Dir, "out", "console.db")
	}
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	store, err := console.OpenSQLite(ctx, db)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer store.Close()
	var users []console.User
	if f.users != "" {
		if users, err = console.LoadUsers(f.users); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
	}
	if f.demo {
		demo, err := demoUsers(inputs)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		users = append(users, demo...)
	}
	srv, err := console.New(console.Options{Store: store, Users: users, Run: watch.View, Log: e.log})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	// Serve from the start: the data engineer's page follows the run live
	// (a continuous run never ends); the other pages show what the store
	// held until the run's outputs are loaded.
	hs, err := metrics.Serve(f.listen, f.listenAny, srv, e.log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "console: http://%s/ (store %s)\n", hs.Addr(), db)
	if f.demo {
		fmt.Fprintf(stdout, "demo accounts (password %q):", demoPassword)
		for _, u := range users {
			fmt.Fprintf(stdout, " %s", u.Name)
		}
		fmt.Fprintln(stdout)
	}
	if !f.noRun {
		sum, err := plan.Run(ctx, pipeline.RunOptions{Stop: stop, Observer: watch})
		watch.Done(sum)
		sum.Print(stdout)
		if err != nil {
			fmt.Fprintln(stderr, "vigie console: the run did not complete; loading what it wrote")
		}
	}
	if err := console.Load(ctx, store, inputs); err != nil {
		fmt.Fprintln(stderr, err)
		hs.Close(context.WithoutCancel(ctx))
		return exitFailed
	}
	fmt.Fprintln(stdout, "console: outputs loaded. Ctrl-C stops it.")
	done, quit := make(chan struct{}), make(chan struct{})
	if consoleHook != nil {
		go func() {
			consoleHook(hs.Addr(), func() { close(quit) })
			close(done)
		}()
	}
	select {
	case <-stop:
	case <-ctx.Done():
	case <-quit:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	hs.Close(sctx)
	if consoleHook != nil {
		<-done
	}
	return exitOK
}

// demoUsers makes admin, steering and one teacher per school of the
// roster, all with demoPassword.
func demoUsers(in console.Inputs) ([]console.User, error) {
	schools, err := console.Schools(in)
	if err != nil {
		return nil, err
	}
	var out []console.User
	add := func(name string, role console.Role, school string) error {
		u, err := console.NewUser(name, role, school, demoPassword)
		out = append(out, u)
		return err
	}
	if err := add("admin", console.RoleAdmin, ""); err != nil {
		return nil, err
	}
	if err := add("steering", console.RoleSteering, ""); err != nil {
		return nil, err
	}
	for _, s := range schools {
		if err := add("teacher-"+s, console.RoleTeacher, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}
