package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/renameio/v2"
	"gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
)

// errChanged marks a conditional call that failed because the object changed since it was
// read; the caller reads it again and retries.
var errChanged = errors.New("object changed during the call")

// errCaptured stops a gocloud call from its Before* hook once the hook has taken what it
// needed (the driver's escaped metadata, an object handle); nothing has been sent by then.
var errCaptured = errors.New("storage: captured")

// SetMetadata replaces the metadata of the object at key with md (lower-cased keys; nil or
// empty removes it all), keeping its content and content type. It reports whether the
// content was rewritten: false when the backend updated metadata alone (S3 CopyObject with
// MetadataDirective REPLACE, Azure Set Blob Metadata, GCS object patch or rewrite, the file
// backend's side file), true when the object was read and written again through this
// process (mem; S3 objects over 5 GiB; Azure keys that gocloud escapes; GCS when all
// metadata is removed). The update is
// conditional on the version it read on S3, Azure and GCS, and retried if a writer came
// in between, so it never pairs new metadata with content it did not see.
func (s *Store) SetMetadata(ctx context.Context, key string, md map[string]string) (rewritten bool, err error) {
	if err := s.checkWrite(ctx, key, md); err != nil {
		return false, s.wrap(ctx, "set metadata", key, err, false)
	}
	lower := make(map[string]string, len(md))
	for k, v := range md {
		lower[strings.ToLower(k)] = v
	}
	for attempt := 1; ; attempt++ {
		raw, err := s.bucket.Attributes(ctx, key)
		if err != nil {
			return false, s.wrap(ctx, "set metadata", key, err, false)
		}
		rewritten, err = s.setMetadata(ctx, key, raw, lower)
		if isPrecondition(err) && attempt < 3 {
			continue
		}
		return rewritten, s.wrap(ctx, "set metadata", key, err, false)
	}
}

func (s *Store) setMetadata(ctx context.Context, key string, raw *blob.Attributes, md map[string]string) (bool, error) {
	switch {
	case s.backend == BackendS3 && raw.Size <= s3CopyLimit:
		return false, s.s3SetMetadata(ctx, key, raw, md)
	case s.backend == BackendAzure && plainAzureKey(key):
		return false, s.azureSetMetadata(ctx, key, raw, md)
	case s.backend == BackendGCS && (len(md) > 0 || len(raw.Metadata) == 0):
		return false, s.gcsSetMetadata(ctx, key, raw, md)
	case s.backend == BackendFile:
		return false, s.fileSetMetadata(ctx, key, raw, md)
	}
	return true, s.copyByStream(ctx, key, key, md)
}

// driverMetadata returns md as the driver would send it: S3 and Azure escape keys and values
// (Azure allows only C# identifiers as keys, so "circle-key-id" is sent escaped). Asking the
// driver keeps a metadata-only update byte-identical with what Put would have written.
func (s *Store) driverMetadata(ctx context.Context, key string, md map[string]string) (s3md map[string]string, azmd map[string]*string, err error) {
	_, err = s.bucket.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType: "application/octet-stream",
		Metadata:    md,
		BeforeWrite: func(as func(any) bool) error {
			var in *transfermanager.UploadObjectInput
			if as(&in) {
				s3md = in.Metadata
			}
			var o *azblob.UploadStreamOptions
			if as(&o) {
				azmd = o.Metadata
			}
			return errCaptured
		},
	})
	if !errors.Is(err, errCaptured) {
		return nil, nil, fmt.Errorf("escape metadata: %w", err)
	}
	return s3md, azmd, nil
}

// s3SetMetadata copies the object onto itself with MetadataDirective REPLACE: S3's only way
// to change metadata, done by the server without moving the content through the client.
func (s *Store) s3SetMetadata(ctx context.Context, key string, raw *blob.Attributes, md map[string]string) error {
	s3md, _, err := s.driverMetadata(ctx, key, md)
	if err != nil {
		return err
	}
	return s.bucket.Copy(ctx, key, key, &blob.CopyOptions{BeforeCopy: func(as func(any) bool) error {
		var in *s3.CopyObjectInput
		if !as(&in) {
			return errors.New("s3: no CopyObjectInput")
		}
		in.MetadataDirective = s3types.MetadataDirectiveReplace
		in.Metadata = s3md
		// REPLACE replaces the headers too: send the ones the object has, and its
		// storage class, which a copy would otherwise reset to STANDARD.
		in.ContentType = optString(raw.ContentType)
		var head s3.HeadObjectOutput
		if raw.As(&head) && head.StorageClass != "" {
			in.StorageClass = s3types.StorageClass(head.StorageClass)
		}
		in.CacheControl = optString(raw.CacheControl)
		in.ContentDisposition = optString(raw.ContentDisposition)
		in.ContentEncoding = optString(raw.ContentEncoding)
		in.ContentLanguage = optString(raw.ContentLanguage)
		if raw.ETag != "" {
			in.CopySourceIfMatch = aws.String(raw.ETag)
		}
		return nil
	}})
}

func optString(v string) *string {
	if v == "" {
		return nil
	}
	return aws.String(v)
}

// plainAzureKey reports whether gocloud's azureblob sends key unescaped, so the native
// client can address the same blob: no control characters, none of \ " # % ?, DEL, no
// trailing "/", no "../", and nothing that reads as an escape sequence ("__0x").
func plainAzureKey(key string) bool {
	if strings.HasSuffix(key, "/") || strings.Contains(key, "../") || strings.Contains(key, "__0x") {
		return false
	}
	for _, c := range key {
		if c < 32 || c == 127 || strings.ContainsRune(`\"#%?`, c) {
			return false
		}
	}
	return true
}

func (s *Store) azureSetMetadata(ctx context.Context, key string, raw *blob.Attributes, md map[string]string) error {
	_, azmd, err := s.driverMetadata(ctx, key, md)
	if err != nil {
		return err
	}
	var cc *container.Client
	if !s.bucket.As(&cc) {
		return errors.New("azure: no container client")
	}
	opts := &azblobblob.SetMetadataOptions{}
	if raw.ETag != "" {
		etag := azcore.ETag(raw.ETag)
		opts.AccessConditions = &azblobblob.AccessConditions{
			ModifiedAccessConditions: &azblobblob.ModifiedAccessConditions{IfMatch: &etag},
		}
	}
	_, err = cc.NewBlobClient(key).SetMetadata(ctx, azmd, opts)
	switch {
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case bloberror.HasCode(err, bloberror.ConditionNotMet):
		return fmt.Errorf("%w: %w", errChanged, err)
	}
	return err
}

// gcsSetMetadata patches the object's metadata. A patch merges keys, and the Go client cannot
// send the null that deletes one key, so when keys go away the object is instead rewritten
// onto itself with the new metadata: a server-side copy, atomic like the patch. Removing all
// metadata is left to the caller's rewrite: a rewrite with no metadata keeps the old, and
// fake-gcs-server, which the tests run against, ignores the patch "metadata": null that
// real GCS honours; Circle never removes all of an object's metadata.
func (s *Store) gcsSetMetadata(ctx context.Context, key string, raw *blob.Attributes, md map[string]string) error {
	var oa storage.ObjectAttrs
	if !raw.As(&oa) {
		return errors.New("gcs: no object attributes")
	}
	cond := storage.Conditions{GenerationMatch: oa.Generation, MetagenerationMatch: oa.Metageneration}
	removes := false
	for k := range raw.Metadata {
		if _, ok := md[k]; !ok {
			removes = true
		}
	}
	var dst *storage.ObjectHandle
	err := s.bucket.Copy(ctx, key, key, &blob.CopyOptions{BeforeCopy: func(as func(any) bool) error {
		var h *gcsblob.CopyObjectHandles
		if !as(&h) {
			return errors.New("gcs: no object handles")
		}
		if !removes {
			dst = h.Dst // gocloud's handle, so the key is escaped as on write
			return errCaptured
		}
		h.Src = h.Src.If(storage.Conditions{GenerationMatch: oa.Generation})
		var c *storage.Copier
		if !as(&c) {
			return errors.New("gcs: no copier")
		}
		c.ContentType = oa.ContentType
		c.CacheControl = oa.CacheControl
		c.ContentDisposition = oa.ContentDisposition
		c.ContentEncoding = oa.ContentEncoding
		c.ContentLanguage = oa.ContentLanguage
		c.Metadata = md
		return nil
	}})
	if dst == nil {
		return err // rewritten (or failed) by Copy
	}
	if len(md) == 0 {
		return nil // nothing to add, nothing to remove
	}
	_, err = dst.If(cond).Update(ctx, storage.ObjectAttrsToUpdate{Metadata: md})
	return err
}

// fileSetMetadata rewrites fileblob's side file "<name>.attrs" (JSON, its metadata under
// "user.metadata"), keeping every other field. The new file is written beside it and renamed
// over it; its temporary name ends in .attrs, so no listing shows it.
func (s *Store) fileSetMetadata(ctx context.Context, key string, raw *blob.Attributes, md map[string]string) error {
	var path string
	r, err := s.bucket.NewReader(ctx, key, &blob.ReaderOptions{BeforeRead: func(as func(any) bool) error {
		var f *os.File
		if as(&f) {
			path = f.Name() // the object's file, with fileblob's escaping applied
		}
		return nil
	}})
	if err != nil {
		return err
	}
	r.Close()
	if path == "" {
		return errors.New("file: no path")
	}
	attrs := map[string]json.RawMessage{}
	if b, err := os.ReadFile(path + ".attrs"); err == nil {
		if err := json.Unmarshal(b, &attrs); err != nil {
			return fmt.Errorf("file: read %s.attrs: %w", filepath.Base(path), err)
		}
	} else if !os.IsNotExist(err) {
		return err
	} else {
		// Written by something else than fileblob: record what Stat showed.
		attrs["user.content_type"], _ = json.Marshal(raw.ContentType)
	}
	if len(md) == 0 {
		attrs["user.metadata"] = json.RawMessage("null")
	} else if attrs["user.metadata"], err = json.Marshal(md); err != nil {
		return err
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		return err
	}
	f, err := renameio.NewPendingFile(path+".attrs", renameio.WithTempDir(filepath.Dir(path)), renameio.WithPermissions(0o600))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}

// pinRead returns a BeforeRead hook that makes a read conditional on the version raw
// describes, so Get's body and attributes agree; nil where the backend has no condition.
func (s *Store) pinRead(raw *blob.Attributes) func(func(any) bool) error {
	switch s.backend {
	case BackendS3, BackendAzure:
		return func(as func(any) bool) error {
			var in *s3.GetObjectInput
			if as(&in) && raw.ETag != "" {
				in.IfMatch = aws.String(raw.ETag)
			}
			var opts *[]func(*s3.Options)
			if as(&opts) {
				// The SDK validates whole-object checksums and logs a warning to stderr
				// for every multipart object, whose checksums are per part: quiet it.
				*opts = append(*opts, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
			}
			var o *azblobblob.DownloadStreamOptions
			if as(&o) && raw.ETag != "" {
				etag := azcore.ETag(raw.ETag)
				o.AccessConditions = &azblobblob.AccessConditions{
					ModifiedAccessConditions: &azblobblob.ModifiedAccessConditions{IfMatch: &etag},
				}
			}
			return nil
		}
	case BackendGCS:
		var oa storage.ObjectAttrs
		if !raw.As(&oa) || oa.Generation == 0 {
			return nil
		}
		return func(as func(any) bool) error {
			var h **storage.ObjectHandle
			if as(&h) {
				// Read that generation: an overwritten one is gone (not found), so the
				// read cannot return a newer body. (fake-gcs-server ignores
				// ifGenerationMatch on reads but honours the generation.)
				*h = (*h).Generation(oa.Generation)
			}
			return nil
		}
	}
	return nil
}
