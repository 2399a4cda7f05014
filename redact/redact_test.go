package redact_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/circlecore/circle/redact"
)

func TestStringHidesEveryOccurrence(t *testing.T) {
	r := redact.New(redact.WithSalt([]byte("s")))
	r.Add("hunter22", "hunter22-long", "abc") // "abc" is below MinLength
	got := r.String("a=hunter22 b=hunter22-long c=abc d=hunter22")
	if strings.Contains(got, "hunter22") {
		t.Fatalf("secret left in %q", got)
	}
	want := fmt.Sprintf("a=%s b=%s c=abc d=%s", r.Mask("hunter22"), r.Mask("hunter22-long"), r.Mask("hunter22"))
	if got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if r.Len() != 2 {
		t.Errorf("Len = %d, want 2 (short values are not hunted)", r.Len())
	}
}

func TestMaskShowsChangeNotValue(t *testing.T) {
	r := redact.New()
	a, b := r.Mask("password-one"), r.Mask("password-two")
	if a == b {
		t.Error("two different secrets got the same mask")
	}
	if a != r.Mask("password-one") {
		t.Error("the same secret got two masks")
	}
	if !regexp.MustCompile(`^\*\*redacted:[0-9a-f]{8}\*\*$`).MatchString(a) {
		t.Errorf("mask %q", a)
	}
	// Random salts: another redactor's hash cannot be matched against this one's.
	if redact.New().Mask("password-one") == a {
		t.Error("two redactors share a salt")
	}
	if redact.New(redact.WithSalt([]byte("x"))).Mask("v") != redact.New(redact.WithSalt([]byte("x"))).Mask("v") {
		t.Error("a fixed salt is not stable")
	}
}

func TestSensitiveKey(t *testing.T) {
	r := redact.New()
	for key, want := range map[string]bool{
		"password": true, "db.password": true, "API_TOKEN": true, "clientSecret": true,
		"private_key": true, "apiKey": true, "host": false, "port": false, "keyspace": false,
	} {
		if got := r.SensitiveKey(key); got != want {
			t.Errorf("SensitiveKey(%q) = %v, want %v", key, got, want)
		}
	}
	custom := redact.New(redact.WithKeyPattern(regexp.MustCompile(`^pin$`)))
	if !custom.SensitiveKey("pin") || custom.SensitiveKey("password") {
		t.Error("custom pattern not used")
	}
}

func TestErrorKeepsChain(t *testing.T) {
	r := redact.New()
	r.Add("s3cr3t-value")
	err := r.Error(fmt.Errorf("connect with %q: %w", "s3cr3t-value", fs.ErrPermission))
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error shows the secret: %v", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("errors.Is lost the cause")
	}
	if r.Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

// A zerolog logger writing through the redactor never prints a secret, also when it
// appears escaped inside JSON.
func TestWriterWithZerolog(t *testing.T) {
	r := redact.New()
	secret := "line1\n\"quoted\" pass"
	r.Add(secret)
	var buf bytes.Buffer
	log := zerolog.New(r.Writer(&buf))
	log.Info().Str("revision", "abc").Msg("failed with " + secret)
	log.Error().Err(errors.New(secret)).Send()
	if strings.Contains(buf.String(), "quoted") {
		t.Fatalf("log shows the secret: %s", buf.String())
	}
	if strings.Count(buf.String(), r.Mask(secret)) != 2 {
		t.Errorf("log lacks two masks: %s", buf.String())
	}
}

func TestConcurrentUse(t *testing.T) {
	r := redact.New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := fmt.Sprintf("secret-%d", i)
			r.Add(v)
			if strings.Contains(r.String("x "+v), v) {
				t.Errorf("%s not redacted after Add", v)
			}
		}()
	}
	wg.Wait()
}

type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterPassesErrors(t *testing.T) {
	if _, err := redact.New().Writer(failing{}).Write([]byte("x")); err == nil {
		t.Error("write error swallowed")
	}
}

// The writer may be shared by goroutines even when what it writes to is not safe for
// that (the race detector checks), and no event is cut into another.
func TestWriter_Concurrent(t *testing.T) {
	r := redact.New()
	r.Add("hunter2")
	var buf bytes.Buffer
	w := r.Writer(&buf)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = w.Write([]byte("password=hunter2\n"))
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 800 || strings.Contains(buf.String(), "hunter2") {
		t.Errorf("%d lines; secret present: %t", len(lines), strings.Contains(buf.String(), "hunter2"))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "password=**redacted:") {
			t.Fatalf("a mixed line: %q", l)
		}
	}
}

// A Secret's data (base64) and stringData are masked by their plaintext: the same value gives
// the same mask either way, and neither form of it is left.
func TestMaskSecretData(t *testing.T) {
	r := redact.New()
	obj := map[string]any{
		"kind":       "Secret",
		"data":       map[string]any{"password": base64.StdEncoding.EncodeToString([]byte("hunter2-value")), "odd": "not base64!"},
		"stringData": map[string]any{"token": "hunter2-value"},
		"metadata":   map[string]any{"name": "s"},
	}
	redact.MaskSecretData(obj, r.Mask)
	data, sd := obj["data"].(map[string]any), obj["stringData"].(map[string]any)
	if data["password"] != r.Mask("hunter2-value") || sd["token"] != data["password"] {
		t.Errorf("masks: data %v, stringData %v", data, sd)
	}
	if data["odd"] != r.Mask("not base64!") {
		t.Errorf("a value that is not base64 is masked as it is: %v", data["odd"])
	}
	if obj["metadata"].(map[string]any)["name"] != "s" {
		t.Error("metadata touched")
	}
	redact.MaskSecretData(map[string]any{"kind": "Secret", "data": "not a map"}, r.Mask) // no panic, nothing to mask
}
