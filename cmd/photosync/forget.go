package main

import (
	"context"
	"fmt"
	"io"
	"photosync/sync/photo"
)

func forgetCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("forget", stderr)
	path := fs.String("config", "", "the admin config file (YAML)")
	owner, err := oneEmail(fs, args)
	if err != nil {
		return err
	}
	_, a, err := operatorApp(ctx, *path, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.engine.Forget(ctx, owner); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "forgot %s at %d sizes: the next request pulls afresh\n", owner, len(photo.Sizes))
	return nil
}
