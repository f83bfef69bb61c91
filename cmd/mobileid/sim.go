package main

import (
	"context"
	"errors"
)

func runSIMIssue(_ context.Context, e *env, args []string) error {
	return errors.New("not built yet")
}
