package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/pipeline"
)

// LicenseChange is one license file applying to the environment whose verdict or terms
// differ between the revisions, or that expires soon.
type LicenseChange struct {
	// ID is the license's id (its file name when it does not parse).
	ID       string `json:"id"`
	File     string `json:"file"`
	Licensee string `json:"licensee,omitempty"`
	// Action is issued (new and accepted), changed (terms differ), revoked, refused (for
	// another reason: expired, bad signature…), accepted (refused at base), removed, or
	// expiring (accepted, unchanged or not, and within the expiry window: a warning).
	Action string `json:"action"`
	// Details are the terms that changed: "features: +sso", "limits.seats: 25 → 50",
	// "expires: 2026-12-31 → 2027-12-31", or why it is refused.
	Details []string `json:"details"`
	// ExpiresAt is head's expiry (RFC 3339), or base's for a removed license.
	ExpiresAt string `json:"expiresAt,omitempty"`
	// Reason is the refusal's reason (license.Reason: Revoked, Expired…).
	Reason string `json:"reason,omitempty"`
}

// compareLicenses pairs the license files applying to env by id. Terms come from the
// files the builds carry: an accepted license's bytes are in the outputs of the
// environments it applies to.
func (c *comparer) compareLicenses(env string) []LicenseChange {
	out := []LicenseChange{}
	if c.head.Licenses == nil {
		return out // head stopped before its licenses step (it has problems): nothing to compare
	}
	bs, hs := statuses(c.base, env), statuses(c.head, env)
	ids := map[string]bool{}
	for id := range bs {
		ids[id] = true
	}
	for id := range hs {
		ids[id] = true
	}
	for _, id := range sortedKeys(ids) {
		b, h := bs[id], hs[id]
		lc := LicenseChange{ID: id, Details: []string{}}
		switch {
		case h == nil:
			lc.File, lc.Licensee, lc.Action, lc.ExpiresAt = b.File, b.Licensee, Removed, stamp(b.ExpiresAt)
			out = append(out, lc)
			continue
		case b == nil && h.Reason == "":
			lc.Action = Issued
		case h.Reason != "" && (b == nil || b.Reason != h.Reason):
			lc.Action, lc.Reason = Refused, h.Reason
			if h.Reason == string(license.ErrRevoked) {
				lc.Action = Revoked
			}
			lc.Details = append(lc.Details, h.Error)
		case h.Reason == "" && b.Reason != "":
			lc.Action = Accepted
			lc.Details = append(lc.Details, "was refused: "+b.Reason)
		case h.Reason == "":
			lc.Details = termChanges(c.licenseFile(c.base, b.File), c.licenseFile(c.head, h.File))
			if len(lc.Details) > 0 {
				lc.Action = Changed
			}
		}
		lc.File, lc.Licensee, lc.ExpiresAt = h.File, h.Licensee, stamp(h.ExpiresAt)
		if h.Reason == "" && c.opts.ExpiryWindow > 0 && !h.ExpiresAt.IsZero() && h.ExpiresAt.Sub(c.opts.Now) < c.opts.ExpiryWindow {
			days := int(h.ExpiresAt.Sub(c.opts.Now).Hours() / 24)
			note := fmt.Sprintf("expires in %d day(s), on %s", days, h.ExpiresAt.UTC().Format("2006-01-02"))
			if lc.Action == "" {
				lc.Action = Expiring
			}
			lc.Details = append(lc.Details, note)
		}
		if lc.Action != "" {
			out = append(out, lc)
		}
	}
	return out
}

// statuses are r's license files that apply to env, by id.
func statuses(r *pipeline.Result, env string) map[string]*pipeline.LicenseStatus {
	out := map[string]*pipeline.LicenseStatus{}
	if r.Licenses == nil {
		return out
	}
	for i := range r.Licenses.Status {
		st := &r.Licenses.Status[i]
		if !slices.Contains(st.Environments, env) {
			continue
		}
		id := st.ID
		if id == "" {
			id = st.File
		}
		out[id] = st
	}
	return out
}

// licenseFile parses the license at path as r's builds carry it, or returns nil.
func (c *comparer) licenseFile(r *pipeline.Result, path string) *license.License {
	for _, o := range r.Outputs {
		if f := o.File(path); f != nil {
			l, err := license.Parse(f.Data)
			if err != nil {
				return nil
			}
			return l
		}
	}
	return nil
}

// termChanges lists what differs in two versions of a license's terms.
func termChanges(b, h *license.License) []string {
	out := []string{}
	if b == nil || h == nil {
		return out
	}
	if b.Licensee != h.Licensee {
		out = append(out, fmt.Sprintf("licensee: %q → %q", b.Licensee, h.Licensee))
	}
	if b.Product != h.Product {
		out = append(out, fmt.Sprintf("product: %q → %q", b.Product, h.Product))
	}
	var feats []string
	for _, f := range h.Features {
		if !b.Allows(f) {
			feats = append(feats, "+"+f)
		}
	}
	for _, f := range b.Features {
		if !h.Allows(f) {
			feats = append(feats, "-"+f)
		}
	}
	if len(feats) > 0 {
		out = append(out, "features: "+strings.Join(feats, " "))
	}
	limits := map[string]bool{}
	for k := range b.Limits {
		limits[k] = true
	}
	for k := range h.Limits {
		limits[k] = true
	}
	for _, k := range sortedKeys(limits) {
		bv, bok := b.Limits[k]
		hv, hok := h.Limits[k]
		switch {
		case !bok:
			out = append(out, fmt.Sprintf("limits.%s: %d (new)", k, hv))
		case !hok:
			out = append(out, fmt.Sprintf("limits.%s: %d (dropped)", k, bv))
		case bv != hv:
			out = append(out, fmt.Sprintf("limits.%s: %d → %d", k, bv, hv))
		}
	}
	if !b.ExpiresAt.Equal(h.ExpiresAt) {
		out = append(out, fmt.Sprintf("expires: %s → %s", day(b.ExpiresAt), day(h.ExpiresAt)))
	}
	if !b.NotBefore.Equal(h.NotBefore) {
		out = append(out, fmt.Sprintf("notBefore: %s → %s", day(b.NotBefore), day(h.NotBefore)))
	}
	if b.Grace != h.Grace {
		out = append(out, fmt.Sprintf("grace: %s → %s", b.Grace, h.Grace))
	}
	if b.Binding != h.Binding {
		out = append(out, "binding changed")
	}
	return out
}

func day(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
