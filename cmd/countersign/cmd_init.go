package main

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

//go:embed starter
var starter embed.FS

func newInitCmd(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a starter countersign.yaml and policies/ into the current directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fs.WalkDir(starter, "starter", func(path string, d fs.DirEntry, err error) error {
				if err != nil || path == "starter" {
					return err
				}
				rel, _ := filepath.Rel("starter", path)
				dst := filepath.Join(e.cwd, rel)
				if d.IsDir() {
					return os.MkdirAll(dst, 0o755)
				}
				if _, err := os.Stat(dst); err == nil && !force {
					fmt.Fprintf(e.stdout, "kept     %s (exists; --force overwrites)\n", rel)
					return nil
				} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				b, err := starter.ReadFile(path)
				if err != nil {
					return err
				}
				if err := os.WriteFile(dst, b, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "wrote    %s\n", rel)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}
