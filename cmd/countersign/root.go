package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/termtext"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries a process exit code: 1 a check failed, 2 usage or
// configuration error; run exits with the child's code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageError(err error) error  { return &exitError{code: 2, err: err} }
func checkFailed(err error) error { return &exitError{code: 1, err: err} }

// env is what commands get from the process, injected for tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	home           string
	cwd            string
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	home, _ := os.UserHomeDir()
	cwd, _ := os.Getwd()
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.LookupEnv, home: home, cwd: cwd}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return mapError(root.ExecuteContext(ctx), stderr)
}

// mapError prints err and returns the exit code for it.
func mapError(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		// Errors quote what files hold (a policy's source line, a log's
		// keys), which the agent may have written (found by review).
		if ee.err != nil {
			fmt.Fprintln(stderr, "countersign:", termtext.Text(ee.err.Error()))
		}
		return ee.code
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, "countersign: configuration error:")
		fmt.Fprintln(stderr, termtext.Text(ce.Error()))
		return 2
	}
	// Flag and argument errors from cobra.
	fmt.Fprintln(stderr, "countersign:", termtext.Text(err.Error()))
	return 2
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "countersign",
		Short: "Decide every request an AI agent makes, hold dangerous ones for a human, audit everything",
		Long: `countersign stands between an AI coding agent and the infrastructure APIs its
tools call. Every request is evaluated against Rego policies and allowed,
denied with a reason the agent can read, or held until a human approves it.

  countersign run -- claude          wrap an agent session
  countersign approvals list         see what is waiting for you
  countersign audit tail -f FILE     watch decisions as they happen`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "configuration file (default ./countersign.yaml if present)")
	root.AddCommand(
		newRunCmd(e),
		newServeCmd(e),
		newDemoCmd(e),
		newPolicyCmd(e),
		newApprovalsCmd(e),
		newAuditCmd(e),
		newCACmd(e),
		newDoctorCmd(e),
		newInitCmd(e),
		newVersionCmd(e),
		newIsolateInitCmd(),
	)
	return root
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(e.stdout, "countersign", version)
			return nil
		},
	}
}
