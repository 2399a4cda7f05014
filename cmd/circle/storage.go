package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/mirror"
	"github.com/circlecore/circle/storage/publish"
	"github.com/circlecore/circle/termsafe"
)

// storageFlags are what every storage command shares: the keyring and the output format.
type storageFlags struct {
	keyring   string
	noEncrypt bool
	keys      keyFlags
	out       outputFlag
}

func (f *storageFlags) register(cmd *cobra.Command, writes bool) {
	cmd.Flags().StringVar(&f.keyring, "keyring", os.Getenv("CIRCLE_STORAGE_KEYRING"),
		"keyring file (circle storage keyring init; may be SOPS-encrypted). Default $CIRCLE_STORAGE_KEYRING")
	if writes {
		cmd.Flags().BoolVar(&f.noEncrypt, "no-encrypt", false, "write objects in the clear (they still carry and check their sha256)")
	}
	f.keys.register(cmd)
	f.out.register(cmd)
}

// open opens the store at url with the keyring, if one is configured.
func (f *storageFlags) open(ctx context.Context, url string, writes bool) (*envelope.Store, error) {
	var ring *envelope.Keyring
	if f.keyring != "" {
		var err error
		if ring, err = f.readKeyring(ctx); err != nil {
			return nil, err
		}
	} else if writes && !f.noEncrypt {
		return nil, errors.New("writes are encrypted: give --keyring (make one with `circle storage keyring init`), or --no-encrypt")
	}
	if f.noEncrypt {
		ring = nil
	}
	b, err := storage.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	return envelope.New(b, ring, "circle "+version), nil
}

// readKeyring reads the keyring file, opening it with the SOPS keys when it is encrypted.
func (f *storageFlags) readKeyring(ctx context.Context) (*envelope.Keyring, error) {
	b, err := os.ReadFile(f.keyring)
	if err != nil {
		return nil, err
	}
	if secrets.IsEncrypted(f.keyring, b) {
		ring, err := f.keys.keyring(ctx)
		if err != nil {
			return nil, err
		}
		if b, err = ring.Decrypt(ctx, f.keyring, b); err != nil {
			return nil, err
		}
	}
	// A KMS-sealed keyring costs one KMS Decrypt here, once per start.
	k, err := envelope.ReadKeyringContext(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.keyring, err)
	}
	return k, nil
}

func newStorageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Read, write and re-key objects in storage backends (S3, Azure Blob, GCS, local)",
		Long: `Objects in S3, Azure Blob, GCS, a local folder or memory, through one API and Circle's
envelope format: each object encrypted with its own data key (Tink AES-GCM-HKDF streaming),
the data key wrapped by the keyring's primary key, and metadata recording the plaintext's
sha256, size, content type, key id, revision and writer. Reads verify the digest.

Stores are URLs:
  s3://BUCKET?region=R[&endpoint=http://host:port&use_path_style=true]
  azblob://CONTAINER        gs://BUCKET        file:///ABSOLUTE/PATH        mem://
Credentials come from each cloud's usual places (AWS_*, AZURE_STORAGE_*, Google ADC) and
never appear in output.

Key rotation: 'keyring rotate' adds a primary; new objects use it, old ones still open;
'rewrap' moves objects to the primary by a metadata-only update; 'keyring retire' then
disables the old key.`,
		Example: `  circle storage keyring init keyring.json
  circle storage sync ./build 's3://my-bucket?region=eu-west-1' site --keyring keyring.json
  circle storage ls 's3://my-bucket?region=eu-west-1' site/
  circle storage get 's3://my-bucket?region=eu-west-1' site/config.json - --keyring keyring.json`,
	}
	cmd.AddCommand(newStorageLsCmd(), newStorageStatCmd(), newStorageGetCmd(), newStoragePutCmd(),
		newStorageSyncCmd(), newStorageVerifyCmd(), newStorageRewrapCmd(), newStorageKeyringCmd(), newStorageBuildCmd())
	return cmd
}

func newStorageLsCmd() *cobra.Command {
	var f storageFlags
	cmd := &cobra.Command{
		Use:   "ls URL [PREFIX]",
		Short: "List objects under a prefix (sizes as stored)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.open(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			defer s.Backend().Close()
			prefix := ""
			if len(args) == 2 {
				prefix = args[1]
			}
			var objs []storage.Attrs
			for a, err := range s.Backend().Walk(cmd.Context(), prefix) {
				if err != nil {
					return err
				}
				objs = append(objs, a)
			}
			return f.out.print(cmd.OutOrStdout(), objs, func() string {
				var b strings.Builder
				for _, o := range objs {
					fmt.Fprintf(&b, "%12d  %s  %s\n", o.Size, o.ModTime.UTC().Format(time.RFC3339), o.Key)
				}
				return b.String()
			})
		},
	}
	f.register(cmd, false)
	return cmd
}

func newStorageStatCmd() *cobra.Command {
	var f storageFlags
	cmd := &cobra.Command{
		Use:   "stat URL KEY",
		Short: "Show an object's recorded metadata: sha256, size, key id, revision, writer",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.open(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			defer s.Backend().Close()
			info, err := s.Stat(cmd.Context(), args[1])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return f.out.print(cmd.OutOrStdout(), info, func() string { return infoText(info) })
		},
	}
	f.register(cmd, false)
	return cmd
}

func infoText(i *envelope.Info) string {
	var b strings.Builder
	for _, kv := range [][2]string{{"key", i.Key}, {"size", fmt.Sprint(i.Size)}, {"sha256", i.SHA256},
		{"content-type", i.ContentType}, {"encryption", i.Encryption}, {"key-id", i.KeyID},
		{"revision", i.Revision}, {"env", i.Env}, {"writer", i.Writer}, {"stored-size", fmt.Sprint(i.StoredSize)}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%-13s %s\n", kv[0]+":", kv[1])
		}
	}
	return b.String()
}

func newStorageGetCmd() *cobra.Command {
	var f storageFlags
	cmd := &cobra.Command{
		Use:   "get URL KEY [FILE|-]",
		Short: "Read an object, decrypted and verified, to a file or stdout (default: stdout)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.open(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			defer s.Backend().Close()
			rc, info, err := s.Get(cmd.Context(), args[1])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer rc.Close()
			var dst io.Writer = cmd.OutOrStdout()
			if len(args) == 3 && args[2] != "-" {
				// Written beside the target and renamed, so a failed check leaves no bad file.
				pf, err := renameio.NewPendingFile(args[2], renameio.WithTempDir(dirOf(args[2])), renameio.WithPermissions(0o600))
				if err != nil {
					return err
				}
				defer pf.Cleanup()
				if _, err := io.Copy(io.MultiWriter(pf, progress(cmd, info.Size, "get "+args[1])), rc); err != nil {
					return &exitError{code: exitFailed, err: err}
				}
				return pf.CloseAtomicallyReplace()
			}
			if _, err := io.Copy(dst, rc); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i+1]
	}
	return "."
}

func newStoragePutCmd() *cobra.Command {
	var (
		f           storageFlags
		contentType string
		revision    string
		env         string
	)
	cmd := &cobra.Command{
		Use:   "put URL KEY [FILE|-]",
		Short: "Write an object from a file or stdin, encrypted (default: stdin)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.open(cmd.Context(), args[0], true)
			if err != nil {
				return err
			}
			defer s.Backend().Close()
			var r io.Reader = cmd.InOrStdin()
			if len(args) == 3 && args[2] != "-" {
				file, err := os.Open(args[2])
				if err != nil {
					return err
				}
				defer file.Close()
				r = file
			}
			info, err := s.Put(cmd.Context(), args[1], r, &envelope.PutOptions{ContentType: contentType, Revision: revision, Env: env})
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return f.out.print(cmd.OutOrStdout(), info, func() string { return infoText(info) })
		},
	}
	cmd.Flags().StringVar(&contentType, "content-type", "", "the object's content type (default application/octet-stream)")
	cmd.Flags().StringVar(&revision, "revision", "", "source revision to record")
	cmd.Flags().StringVar(&env, "env", "", "environment to record")
	f.register(cmd, true)
	return cmd
}

func newStorageSyncCmd() *cobra.Command {
	var (
		f    storageFlags
		opts mirror.Options
		down mirror.DownloadOptions
	)
	cmd := &cobra.Command{
		Use:   "sync (DIR URL [PREFIX] | URL [PREFIX] DIR)",
		Short: "Make a store's PREFIX hold exactly DIR's files, or DIR hold PREFIX's objects (source first, like rclone sync)",
		Long: `Sync copies one way, source first as in 'rclone sync SRC DST'. The argument with a scheme
(s3://, file://, …) is the store, written URL [PREFIX]; the other is the local folder.

Upload, DIR URL [PREFIX]: DIR's files go under PREFIX, encrypted, in parallel, and objects
that have no file are deleted (unless --keep-extra). An encrypted index object
(PREFIX/.circle-index.json) remembers each file's size, mtime and sha256, so a re-sync of
unchanged files reads neither them nor the objects. Symlinks are not followed.

Download, URL [PREFIX] DIR: every object under PREFIX is decrypted (--keyring) and checked
against its recorded sha256 and size while it is written to a temporary file beside its
target, which is renamed into place only then: a corrupt object fails naming its key and
leaves the old file, or none. DIR is made if missing. A file that already has the object's
content (by the index's sha256) is not fetched. Files in DIR that have no object are kept,
as rclone copy keeps them; --delete removes them, as rclone sync does: only regular files
inside DIR (emptied folders too), never through a symlink. A key that is not a path inside
DIR ("..", an absolute path) stops the download before anything is written. New files get
mode 0600, as 'get' writes them, and the upload's mtime; replaced files keep their mode.`,
		Example: `  # upload ./site under the prefix site
  circle storage sync ./site 's3://bucket?region=eu-west-1' site --keyring keyring.json
  # download it back into ./site; files that have no object stay
  circle storage sync 's3://bucket?region=eu-west-1' site ./site --keyring keyring.json
  # what a download that also deletes would change
  circle storage sync 's3://bucket?region=eu-west-1' site ./site --delete --dry-run --keyring keyring.json
  # no prefix: the whole store
  circle storage sync file:///srv/backup ./restore --keyring keyring.json`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := parseSyncArgs(args)
			if err != nil {
				return err
			}
			// The two directions' defaults differ (rclone sync up, rclone copy down), so a
			// flag of the other direction is a mistake about which way this copies.
			if a.download && cmd.Flags().Changed("keep-extra") {
				return errors.New("--keep-extra is for uploads (DIR URL [PREFIX]); a download keeps files that have no object unless --delete")
			}
			if !a.download && cmd.Flags().Changed("delete") {
				return errors.New("--delete is for downloads (URL [PREFIX] DIR); an upload deletes objects that have no file unless --keep-extra")
			}
			s, err := f.open(cmd.Context(), a.url, !a.download)
			if err != nil {
				return err
			}
			defer s.Backend().Close()
			bar := progress(cmd, -1, "sync")
			report := func(p mirror.Progress) {
				if pb, ok := bar.(*progressbar.ProgressBar); ok {
					pb.ChangeMax64(p.TotalBytes)
					_ = pb.Set64(p.Bytes)
				}
			}
			if a.download {
				down.Concurrency, down.DryRun, down.Progress = opts.Concurrency, opts.DryRun, report
				res, err := mirror.Download(cmd.Context(), s, a.prefix, a.dir, down)
				if err != nil {
					return &exitError{code: exitFailed, err: err}
				}
				return f.out.print(cmd.OutOrStdout(), res, func() string {
					return changesText(res.Changes) + fmt.Sprintf("%d downloaded (%d bytes), %d unchanged, %d deleted\n", res.Downloaded, res.Bytes, res.Skipped, res.Deleted)
				})
			}
			opts.Progress = report
			res, err := mirror.Sync(cmd.Context(), a.dir, s, a.prefix, opts)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return f.out.print(cmd.OutOrStdout(), res, func() string {
				return changesText(res.Changes) + fmt.Sprintf("%d uploaded (%d bytes), %d unchanged, %d deleted\n", res.Uploaded, res.Bytes, res.Skipped, res.Deleted)
			})
		},
	}
	intVar(cmd.Flags(), &opts.Concurrency, "concurrency", 0, 0, 256, "parallel uploads or downloads, up to 256 (0: 16)")
	cmd.Flags().BoolVar(&opts.KeepExtra, "keep-extra", false, "upload: keep objects that have no local file (rclone copy)")
	cmd.Flags().BoolVar(&down.Delete, "delete", false, "download: delete files in DIR that have no object (rclone sync; the default keeps them, as rclone copy)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would change; change nothing")
	f.register(cmd, true)
	return cmd
}

// syncArgs are sync's arguments sorted out: which is the store, which the folder, and so
// which way the copy goes.
type syncArgs struct {
	dir, url, prefix string
	download         bool
}

// parseSyncArgs tells the two forms apart by where the one store URL is: first, a
// download (URL [PREFIX] DIR); second, an upload (DIR URL [PREFIX]), the form sync has
// always had. Anything else is refused rather than guessed: a copy the wrong way round
// would overwrite or delete the side meant as the source.
func parseSyncArgs(args []string) (syncArgs, error) {
	var at []int
	for i, arg := range args {
		if isStoreURL(arg) {
			at = append(at, i)
		}
	}
	const forms = "give DIR URL [PREFIX] to upload, URL [PREFIX] DIR to download"
	switch {
	case len(at) == 0:
		return syncArgs{}, fmt.Errorf("no argument is a store URL (scheme://…): %s", forms)
	case len(at) > 1:
		return syncArgs{}, fmt.Errorf("%q and %q are both store URLs: sync copies between a store and a folder; %s", args[at[0]], args[at[1]], forms)
	case at[0] == 0:
		a := syncArgs{url: args[0], dir: args[len(args)-1], download: true}
		if len(args) == 3 {
			a.prefix = strings.Trim(args[1], "/")
		}
		return a, nil
	case at[0] == 1:
		a := syncArgs{dir: args[0], url: args[1]}
		if len(args) == 3 {
			a.prefix = strings.Trim(args[2], "/")
		}
		return a, nil
	}
	return syncArgs{}, fmt.Errorf("the store URL %q comes last: %s", args[at[0]], forms)
}

// isStoreURL says whether arg names a store rather than a folder: a URL scheme then "://",
// which every store URL has and a local path has only if written so on purpose
// (./x://y is a folder).
func isStoreURL(arg string) bool {
	scheme, _, ok := strings.Cut(arg, "://")
	if !ok || scheme == "" {
		return false
	}
	for i, r := range scheme {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return false
		}
	}
	return true
}

// changesText is sync's list of changes, one a line. Each is escaped as a line of its own
// (termsafe.Line): a key is whatever a bucket's writers chose, and one with a line break
// could otherwise print a change that was not made.
func changesText(changes []string) string {
	var b strings.Builder
	for _, c := range changes {
		fmt.Fprintln(&b, termsafe.Line(c))
	}
	return b.String()
}

// objectResult is one object's outcome in verify and rewrap.
type objectResult struct {
	Key       string `json:"key"`
	OK        bool   `json:"ok"`
	Changed   bool   `json:"changed,omitempty"`
	Rewritten bool   `json:"rewritten,omitempty"`
	Error     string `json:"error,omitempty"`
	// Skipped says why an object was left alone.
	Skipped string `json:"skipped,omitempty"`
}

// eachObject runs fn on every object under prefix and prints the results; objects that
// fail make the command exit 1.
func eachObject(cmd *cobra.Command, f *storageFlags, args []string, writes bool, fn func(s *envelope.Store, key string) objectResult) error {
	s, err := f.open(cmd.Context(), args[0], false)
	if err != nil {
		return err
	}
	defer s.Backend().Close()
	if writes && f.keyring == "" {
		return errors.New("give --keyring")
	}
	prefix := ""
	if len(args) == 2 {
		prefix = args[1]
	}
	var results []objectResult
	failed := 0
	for a, err := range s.Backend().Walk(cmd.Context(), prefix) {
		if err != nil {
			return err
		}
		r := fn(s, a.Key)
		if !r.OK {
			failed++
		}
		results = append(results, r)
	}
	err = f.out.print(cmd.OutOrStdout(), results, func() string {
		var b strings.Builder
		for _, r := range results {
			switch {
			case !r.OK:
				fmt.Fprintf(&b, "FAIL  %s: %s\n", r.Key, r.Error)
			case r.Skipped != "":
				fmt.Fprintf(&b, "skip  %s: %s\n", r.Key, r.Skipped)
			case r.Changed && r.Rewritten:
				fmt.Fprintf(&b, "ok    %s (rewrapped; the backend rewrote the object)\n", r.Key)
			case r.Changed:
				fmt.Fprintf(&b, "ok    %s (rewrapped)\n", r.Key)
			default:
				fmt.Fprintf(&b, "ok    %s\n", r.Key)
			}
		}
		fmt.Fprintf(&b, "\n%d object(s), %d failed\n", len(results), failed)
		return b.String()
	})
	if err != nil {
		return err
	}
	if failed > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%d object(s) failed", failed)}
	}
	return nil
}

func newStorageVerifyCmd() *cobra.Command {
	var f storageFlags
	cmd := &cobra.Command{
		Use:   "verify URL [PREFIX]",
		Short: "Read every object under PREFIX and check it against its recorded sha256 and size",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachObject(cmd, &f, args, false, func(s *envelope.Store, key string) objectResult {
				if r, ok := inTheClear(key); ok {
					return r
				}
				if _, err := s.Verify(cmd.Context(), key); err != nil {
					return objectResult{Key: key, Error: err.Error()}
				}
				return objectResult{Key: key, OK: true}
			})
		},
	}
	f.register(cmd, false)
	return cmd
}

// inTheClear skips the one object of a publish target that is not sealed: the daemon's
// status, written in the clear by design (it holds no value), which verify and rewrap would
// otherwise report as corrupt.
func inTheClear(key string) (objectResult, bool) {
	if key != reconciler.StatusKey {
		return objectResult{}, false
	}
	return objectResult{Key: key, OK: true, Skipped: "the daemon's status, written in the clear by design (it holds no value)"}, true
}

func newStorageRewrapCmd() *cobra.Command {
	var f storageFlags
	cmd := &cobra.Command{
		Use:   "rewrap URL [PREFIX]",
		Short: "Re-wrap every object's data key under the keyring's primary key (metadata only where possible)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachObject(cmd, &f, args, true, func(s *envelope.Store, key string) objectResult {
				if r, ok := inTheClear(key); ok {
					return r
				}
				changed, rewritten, err := s.Rewrap(cmd.Context(), key)
				if err != nil {
					return objectResult{Key: key, Error: err.Error()}
				}
				return objectResult{Key: key, OK: true, Changed: changed, Rewritten: rewritten}
			})
		},
	}
	f.register(cmd, false)
	return cmd
}

func newStorageKeyringCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keyring",
		Short: "Make and rotate storage keyrings",
	}
	var out outputFlag
	show := func(cmd *cobra.Command, k *envelope.Keyring) error {
		v := map[string]any{"primary": k.Primary(), "keys": k.Keys(), "history": k.History()}
		return out.print(cmd.OutOrStdout(), v, func() string {
			var b strings.Builder
			for _, ki := range k.Keys() {
				state := "enabled"
				if ki.Retired {
					state = "retired"
				}
				if ki.Primary {
					state += ", primary"
				}
				fmt.Fprintf(&b, "key %d  %s\n", ki.ID, state)
			}
			for _, e := range k.History() {
				fmt.Fprintf(&b, "  %s  %-8s key %d\n", e.At.Format(time.RFC3339), e.Action, e.Key)
			}
			return b.String()
		})
	}
	// rewrite writes the keyring back.
	rewrite := func(path string, k *envelope.Keyring) error {
		nb, err := k.Marshal()
		if err != nil {
			return err
		}
		return writeAtomic(path, append(nb, '\n'), 0o600)
	}
	// load refuses a SOPS-sealed keyring before parsing it (its values are ENC[…]): these
	// commands would have to write it back, and never write key material in the clear.
	load := func(path string) (*envelope.Keyring, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if secrets.IsEncrypted(path, b) {
			return nil, fmt.Errorf("%s is SOPS-encrypted: open it in place, change it, and seal it again: "+
				"sops decrypt -i %[1]s && circle storage keyring … %[1]s; sops encrypt -i %[1]s", path)
		}
		return envelope.ReadKeyringFile(path)
	}

	var kmsURL string
	initCmd := &cobra.Command{
		Use:   "init FILE",
		Short: "Make a keyring with one key (the file must not exist; keep it secret, seal it with SOPS, or give --kms)",
		Example: `  circle storage keyring init keyring.json
  circle storage keyring init keyring.json --kms 'awskms://1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-west-1'
  circle storage keyring init keyring.json --kms 'awskms:///alias/circle-storage?region=eu-west-1'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := envelope.NewKeyring()
			if err != nil {
				return err
			}
			if kmsURL != "" {
				if err := k.SetKMS(kmsURL); err != nil {
					return err
				}
			}
			b, err := k.MarshalContext(cmd.Context())
			if err != nil {
				return err
			}
			if kmsURL != "" {
				// Open it before writing it: a key that encrypts but may not decrypt (a key
				// policy, a grant) would otherwise leave a keyring nothing can load.
				if _, err := envelope.ReadKeyringContext(cmd.Context(), b); err != nil {
					return fmt.Errorf("the new keyring does not open again, not written: %w", err)
				}
			}
			fh, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := fh.Write(append(b, '\n')); err != nil {
				fh.Close()
				return err
			}
			if err := fh.Close(); err != nil {
				return err
			}
			return show(cmd, k)
		},
	}
	rotateCmd := &cobra.Command{
		Use:   "rotate FILE",
		Short: "Add a key and make it the primary; old objects still open",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := load(args[0])
			if err != nil {
				return err
			}
			if _, err := k.Rotate(); err != nil {
				return err
			}
			if err := rewrite(args[0], k); err != nil {
				return err
			}
			return show(cmd, k)
		},
	}
	retireCmd := &cobra.Command{
		Use:   "retire FILE KEY-ID",
		Short: "Disable a key (rewrap first): objects still wrapped by it stop opening",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := load(args[0])
			if err != nil {
				return err
			}
			var id uint32
			if _, err := fmt.Sscan(args[1], &id); err != nil {
				return fmt.Errorf("key id %q: %w", args[1], err)
			}
			if err := k.Retire(id); err != nil {
				return err
			}
			if err := rewrite(args[0], k); err != nil {
				return err
			}
			return show(cmd, k)
		},
	}
	showCmd := &cobra.Command{
		Use:   "show FILE",
		Short: "List a keyring's keys and its history (never the key material)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := load(args[0])
			if err != nil {
				return err
			}
			return show(cmd, k)
		},
	}
	initCmd.Flags().StringVar(&kmsURL, "kms", "", "seal the keyring's keys under this KMS key (awskms://KEY-ID?region=R, gcpkms://…, azurekeyvault://…); "+
		"loading it then costs one KMS Decrypt, rotate and retire seal it again under the same key")
	for _, c := range []*cobra.Command{initCmd, rotateCmd, retireCmd, showCmd} {
		out.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}

// progress returns a progress bar on stderr when stderr is a terminal, else io.Discard:
// logs and CI output get the final summary only.
func progress(cmd *cobra.Command, size int64, what string) io.Writer {
	f, ok := cmd.ErrOrStderr().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return io.Discard
	}
	return progressbar.DefaultBytes(size, what)
}

func newStorageBuildCmd() *cobra.Command {
	var f storageFlags
	cmd := &cobra.Command{
		Use:   "build URL ENV [FILE]",
		Short: "Show an environment's current published build, or print one of its files",
		Long: `The daemon publishes each environment's build to its target: content-addressed objects,
then a manifest, then envs/ENV/current.json. Without FILE this prints the current manifest
(revision, files, digests); with FILE it prints that file of the build, decrypted and
checked against the manifest.`,
		Example: `  circle storage build file://$PWD/.circle prod --keyring .circle-keyring.json
  circle storage build file://$PWD/.circle prod config.json --keyring .circle-keyring.json`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.open(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			defer s.Backend().Close()
			t := publish.New(s, "")
			m, err := t.Current(cmd.Context(), args[1])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if len(args) == 3 {
				b, err := t.ReadFile(cmd.Context(), m, args[2])
				if err != nil {
					return &exitError{code: exitFailed, err: err}
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return f.out.print(cmd.OutOrStdout(), m, func() string {
				var b strings.Builder
				fmt.Fprintf(&b, "%s build %d of revision %s, published %s\n", m.Env, m.Seq, m.Revision, m.PublishedAt.Format(time.RFC3339))
				for _, e := range m.Files {
					fmt.Fprintf(&b, "  %-40s %8d  sha256:%s\n", e.Path, e.Size, e.SHA256)
				}
				return b.String()
			})
		},
	}
	f.register(cmd, false)
	return cmd
}
