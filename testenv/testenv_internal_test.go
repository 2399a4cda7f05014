package testenv

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTool_Missing(t *testing.T) {
	t.Setenv("CIRCLE_TESTENV_NOPE", "")
	if _, err := Tool("CIRCLE_TESTENV_NOPE"); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "make testenv") {
		t.Errorf("err = %v, want one naming make testenv", err)
	}
	t.Setenv(ToolVersityGW, "/nonexistent/versitygw")
	if _, err := Tool(ToolVersityGW); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "/nonexistent/versitygw") {
		t.Errorf("err = %v, want the missing path and make testenv", err)
	}
}

func TestProcess_ExitBeforeReady(t *testing.T) {
	p, err := startProcess("crasher", t.TempDir(), nil, "sh", "-c", "echo listen failed: address in use; exit 1")
	if err != nil {
		t.Fatal(err)
	}
	err = p.waitReady(10*time.Second, func(context.Context) error { return errors.New("not yet") })
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "address in use") {
		t.Errorf("err = %v, want the exit and the server's own output", err)
	}
}

func TestProcess_NotReadyInTime(t *testing.T) {
	p, err := startProcess("sleeper", t.TempDir(), nil, "sh", "-c", "echo starting; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	err = p.waitReady(300*time.Millisecond, func(context.Context) error { return errors.New("connection refused") })
	if err == nil || !strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Error("the server that never became ready was left running")
	}
}
