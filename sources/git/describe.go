package git

import (
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/circlecore/circle/sources/signature"
)

// Commit is what a person reads of a commit: who wrote it, when, and why.
type Commit struct {
	Author  string    `json:"author"`
	Date    time.Time `json:"date"`
	Message string    `json:"message"`
	// Signed says whether the commit carries a signature (whether it is trusted is the
	// signature policy's to say).
	Signed bool `json:"signed"`
}

// Describe decodes a snapshot's commit object (go-git's decoder, over the signed payload,
// which is the commit without its signature header).
func Describe(o *signature.Object) (*Commit, error) {
	if o == nil {
		return nil, fmt.Errorf("no commit")
	}
	mo := &plumbing.MemoryObject{}
	mo.SetType(plumbing.CommitObject)
	if _, err := mo.Write(o.Payload); err != nil {
		return nil, err
	}
	var c object.Commit
	if err := c.Decode(mo); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	return &Commit{Author: c.Author.Name + " <" + c.Author.Email + ">", Date: c.Author.When.UTC(), Message: c.Message, Signed: o.Signed()}, nil
}
