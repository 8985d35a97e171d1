package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/internal/mitm"
)

func newCACmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Create, locate or print the local CA that signs intercepted connections",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "init",
		Short: "Create the CA (ECDSA P-256, key 0600) if it does not exist",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfigLenient(cmd, e)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
				return usageError(fmt.Errorf("create state_dir: %w", err))
			}
			cert, key := cfg.CAPaths()
			_, created, err := mitm.LoadOrCreate(cert, key, nil)
			if err != nil {
				return usageError(err)
			}
			if created {
				fmt.Fprintf(e.stdout, "created %s (key %s, mode 0600)\n", cert, key)
			} else {
				fmt.Fprintf(e.stdout, "CA exists: %s\n", cert)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "path",
		Short: "Print the CA certificate's path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfigLenient(cmd, e)
			if err != nil {
				return err
			}
			cert, _ := cfg.CAPaths()
			fmt.Fprintln(e.stdout, cert)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "export",
		Short: "Print the CA certificate (PEM) for clients to trust; never the key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfigLenient(cmd, e)
			if err != nil {
				return err
			}
			cert, _ := cfg.CAPaths()
			c, err := readCACert(cert)
			if err != nil {
				return usageError(fmt.Errorf("%w (create it with `countersign ca init`)", err))
			}
			_, err = e.stdout.Write(c.CertPEM())
			return err
		},
	})
	return cmd
}
