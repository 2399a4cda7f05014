package osv

import (
	"fmt"
	"math"
	"strings"
)

// BaseScore computes the base score of a CVSS v3.0 or v3.1 vector, such as
// "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" (9.8), with the equations of FIRST's
// specification, section 7.1 (https://www.first.org/cvss/v3.1/specification-document).
// Temporal and environmental metrics may be present; the base score ignores them.
func BaseScore(vector string) (float64, error) {
	version, rest, ok := strings.Cut(vector, "/")
	if !ok || version != "CVSS:3.0" && version != "CVSS:3.1" {
		return 0, fmt.Errorf("CVSS vector %q: want a CVSS:3.0/ or CVSS:3.1/ prefix", vector)
	}
	m := map[string]string{}
	for _, part := range strings.Split(rest, "/") {
		k, v, ok := strings.Cut(part, ":")
		if !ok || v == "" {
			return 0, fmt.Errorf("CVSS vector %q: malformed metric %q", vector, part)
		}
		if _, dup := m[k]; dup {
			return 0, fmt.Errorf("CVSS vector %q: metric %s given twice", vector, k)
		}
		if !knownMetrics[k] {
			return 0, fmt.Errorf("CVSS vector %q: unknown metric %s", vector, k)
		}
		m[k] = v
	}
	weight := func(metric string, table map[string]float64) (float64, error) {
		v, ok := m[metric]
		if !ok {
			return 0, fmt.Errorf("CVSS vector %q: base metric %s missing", vector, metric)
		}
		w, ok := table[v]
		if !ok {
			return 0, fmt.Errorf("CVSS vector %q: %s:%s is not a valid value", vector, metric, v)
		}
		return w, nil
	}
	scope, ok := m["S"]
	if !ok || scope != "U" && scope != "C" {
		return 0, fmt.Errorf("CVSS vector %q: base metric S must be U or C", vector)
	}
	changed := scope == "C"
	pr := prUnchanged
	if changed {
		pr = prChanged
	}
	var w [7]float64
	for i, x := range []struct {
		metric string
		table  map[string]float64
	}{{"AV", av}, {"AC", ac}, {"PR", pr}, {"UI", ui}, {"C", cia}, {"I", cia}, {"A", cia}} {
		var err error
		if w[i], err = weight(x.metric, x.table); err != nil {
			return 0, err
		}
	}
	iss := 1 - (1-w[4])*(1-w[5])*(1-w[6])
	var impact float64
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	exploitability := 8.22 * w[0] * w[1] * w[2] * w[3]
	if impact <= 0 {
		return 0, nil
	}
	roundup := roundup31
	if version == "CVSS:3.0" {
		roundup = roundup30
	}
	if changed {
		return roundup(math.Min(1.08*(impact+exploitability), 10)), nil
	}
	return roundup(math.Min(impact+exploitability, 10)), nil
}

// roundup31 is CVSS v3.1's Roundup (Appendix A): the smallest number with one decimal
// that is at least x, computed on integers so 4.000000001 does not become 4.1 through
// floating-point error.
func roundup31(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return float64(i/10000+1) / 10
}

// roundup30 is CVSS v3.0's simpler round-up to one decimal.
func roundup30(x float64) float64 { return math.Ceil(x*10) / 10 }

// Rating is the qualitative severity of a CVSS v3 score (specification, section 5).
func Rating(score float64) string {
	switch {
	case score <= 0:
		return "NONE"
	case score < 4:
		return "LOW"
	case score < 7:
		return "MEDIUM"
	case score < 9:
		return "HIGH"
	}
	return "CRITICAL"
}

// Metric weights of the specification's section 7.4.
var (
	av          = map[string]float64{"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
	ac          = map[string]float64{"L": 0.77, "H": 0.44}
	prUnchanged = map[string]float64{"N": 0.85, "L": 0.62, "H": 0.27}
	prChanged   = map[string]float64{"N": 0.85, "L": 0.68, "H": 0.5}
	ui          = map[string]float64{"N": 0.85, "R": 0.62}
	cia         = map[string]float64{"H": 0.56, "L": 0.22, "N": 0}

	knownMetrics = map[string]bool{
		"AV": true, "AC": true, "PR": true, "UI": true, "S": true, "C": true, "I": true, "A": true,
		"E": true, "RL": true, "RC": true,
		"CR": true, "IR": true, "AR": true, "MAV": true, "MAC": true, "MPR": true, "MUI": true, "MS": true, "MC": true, "MI": true, "MA": true,
	}
)
