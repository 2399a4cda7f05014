package layers_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/layers"
)

// configOf writes a YAML or JSON config file of about size bytes shaped like a generated
// one: one entry per service, each a map of short scalars, a list and a nested map. Short
// values make it dense in nodes (about 15 bytes a value), the costly case for a parser.
// "yaml-merge-key" is instead one mapping of single-line entries after a merge key.
func configOf(format string, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 512)
	switch format {
	case "json":
		b.WriteString("{")
	case "yaml-merge-key":
		// One mapping that starts with a merge key: CUE's decoder took 86 s on 512 KiB.
		b.WriteString("defaults: &defaults {replicas: 1, enabled: true}\nservices:\n  <<: *defaults\n")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "  svc%06d: registry.example.com/team/svc%06d:1.2.3\n", i, i)
		}
		return b.Bytes()
	}
	for i := 0; b.Len() < size; i++ {
		if format == "json" {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "\n  \"svc%06d\": {\"image\": \"registry.example.com/team/svc%06d:1.2.3\", \"replicas\": %d, \"enabled\": true, \"ratio\": 0.25, \"hosts\": [\"a%d.example.com\", \"b%d.example.com\"], \"env\": {\"LOG_LEVEL\": \"info\", \"REGION\": \"eu-west-1\"}}", i, i, i%7, i, i)
			continue
		}
		fmt.Fprintf(&b, "svc%06d:\n  image: registry.example.com/team/svc%06d:1.2.3\n  replicas: %d\n  enabled: true\n  ratio: 0.25\n  hosts:\n    - a%d.example.com\n    - b%d.example.com\n  env:\n    LOG_LEVEL: info\n    REGION: eu-west-1\n", i, i, i%7, i, i)
	}
	if format == "json" {
		b.WriteString("\n}\n")
	}
	return b.Bytes()
}

// BenchmarkParse parses one config file of 1, 5 and 10 MB: the time must grow linearly
// with the size (issue 17 had 10 MB take over 60 s), and 10 MB must parse in about 2 s.
// The merge-key shape was quadratic in CUE's YAML decoder (128 KiB: 5 s; 512 KiB: 86 s).
// Besides ns/op it reports cpu-ns/op, the process's CPU time per parse (garbage collection
// included), which a busy shared machine does not inflate the way it does wall time.
func BenchmarkParse(b *testing.B) {
	for _, format := range []string{"yaml", "json", "yaml-merge-key"} {
		for _, mb := range []int{1, 5, 10} {
			data := configOf(format, mb<<20)
			b.Run(fmt.Sprintf("%s/%dMB", format, mb), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				var cpu time.Duration
				for b.Loop() {
					start := cpuTime()
					if _, err := layers.Parse("config/base/big."+ext(format), data); err != nil {
						b.Fatal(err)
					}
					cpu += cpuTime() - start
				}
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// ext is the file extension of a configOf format.
func ext(format string) string {
	if strings.HasPrefix(format, "yaml") {
		return "yaml"
	}
	return format
}

// BenchmarkMerge merges a 5 MB layer with an override layer deleting half of its keys:
// deleting used to search and copy the key list, quadratic in the number of deletions.
func BenchmarkMerge(b *testing.B) {
	base, err := layers.Parse("config/base/big.yaml", configOf("yaml", 5<<20))
	if err != nil {
		b.Fatal(err)
	}
	var nulls bytes.Buffer
	for i := 0; i < 30000; i += 2 {
		fmt.Fprintf(&nulls, "svc%06d: null\n", i)
	}
	over, err := layers.Parse("config/prod/big.yaml", nulls.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		layers.Merge(base, over)
	}
}
