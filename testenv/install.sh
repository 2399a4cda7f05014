#!/usr/bin/env bash
# install.sh builds or installs every server the tests talk to, once per version, into a cache
# outside the repository, so a warm machine pays seconds and a cold one pays the builds once.
#
#   CIRCLE_TESTENV_CACHE   where tools are kept (default ~/.cache/circle-testenv)
#
# Each tool lands in $CACHE/<tool>-<version>/ and is only rebuilt when that folder lacks the
# binary; a build goes to a temporary folder first so an interrupted build is never mistaken
# for a finished one. Everything comes from the Go module proxy, Debian packages or npm.
set -euo pipefail

CACHE=${CIRCLE_TESTENV_CACHE:-$HOME/.cache/circle-testenv}
KUBE_VERSION=v1.37.2      # kube-apiserver, built from k8s.io/kubernetes
STAGING_VERSION=v0.37.2   # the k8s.io/* staging modules that match it
ETCD_VERSION=v3.7.0       # the etcd Kubernetes 1.37 pins in hack/lib/etcd.sh
VERSITYGW_VERSION=v1.8.0  # S3 server (Apache-2.0)
FAKEGCS_VERSION=v1.56.1   # GCS emulator (BSD-2)
AZURITE_VERSION=3.37.0    # Azure Blob emulator (MIT, npm)
SOPS_VERSION=v3.13.3      # the sops CLI, to encrypt test files the way users do (MPL-2.0)
CUE_VERSION=v0.17.1       # the cue CLI, the baseline of the validate benchmark (Apache-2.0)
KUSTOMIZE_VERSION=v5.8.2  # the kustomize CLI built on the kustomize/api in go.mod (v0.21.2): render's differential tests (Apache-2.0)
LOCAL_KMS_VERSION=v0.0.0-20260228092603-2a5e92d09ab6  # AWS KMS emulator, for KMS-wrapped storage keyrings and sops' KMS keys (MIT); untagged, the newest the module proxy serves
FLUX_SOURCE_VERSION=v1.9.6     # Flux's source-controller, for make bench-peers only (Apache-2.0)
FLUX_KUSTOMIZE_VERSION=v1.9.6  # Flux's kustomize-controller, for make bench-peers only (v1.10 needs Go 1.27)

export CGO_ENABLED=0
export GOFLAGS=-buildvcs=false
mkdir -p "$CACHE"

log() { printf '[testenv %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# have DIR BIN: true when DIR/bin/BIN is already built.
have() { [ -x "$1/bin/$2" ]; }

# scratch_build NAME VERSION MODULE@VER PACKAGE LDFLAGS [extra go.mod lines]
# builds PACKAGE inside a throw-away module that requires MODULE, because some servers
# (etcd, kubernetes) carry replace directives that `go install pkg@version` refuses.
scratch_build() {
	local name=$1 dir=$2 req=$3 pkg=$4 ldflags=$5 extra=${6:-}
	# A fixed scratch folder: a failed build leaves it behind for reading, the next run starts over.
	local work=$CACHE/.build-$name
	rm -rf "$work" && mkdir -p "$work"
	cat >"$work/go.mod" <<GOMOD
module circle.local/testenv/$name

go 1.26

require ${req% *} ${req#* }
$extra
GOMOD
	(
		cd "$work"
		go mod download "${req% *}"
		go build -mod=mod -trimpath -ldflags "$ldflags" -o "$work/bin/$(basename "$pkg")" "$pkg"
	)
	mkdir -p "$dir"
	rm -rf "$dir/bin" && mv "$work/bin" "$dir/bin"
	rm -rf "$work"
}

install_etcd() {
	local dir=$CACHE/etcd-$ETCD_VERSION
	have "$dir" etcd && return
	log "building etcd $ETCD_VERSION (about 80 CPU-seconds cold)"
	scratch_build etcd "$dir" "go.etcd.io/etcd/server/v3 $ETCD_VERSION" go.etcd.io/etcd/server/v3 "-s -w"
	mv "$dir/bin/v3" "$dir/bin/etcd"
}

install_kube_apiserver() {
	local dir=$CACHE/kube-apiserver-$KUBE_VERSION
	have "$dir" kube-apiserver && return
	log "building kube-apiserver $KUBE_VERSION (about 1,300 CPU-seconds cold)"
	go mod download k8s.io/kubernetes@"$KUBE_VERSION"
	local gomod
	gomod=$(go mod download -json k8s.io/kubernetes@"$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	# kubernetes requires its staging modules at v0.0.0 and replaces them with local folders;
	# point each at the published module of the matching version instead. The two samples are
	# not published and nothing in kube-apiserver needs them.
	local replaces
	replaces=$(grep -E '^\s+k8s.io/[^ ]+ v0\.0\.0(\s|$)' "$gomod" | awk '{print $1}' | sort -u |
		grep -v -E 'sample-(cli-plugin|controller)' |
		sed "s|.*|replace & => & $STAGING_VERSION|")
	local minor=${KUBE_VERSION#v1.}
	minor=${minor%%.*}
	local x ldflags=""
	for x in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $x.gitVersion=$KUBE_VERSION -X $x.gitMajor=1 -X $x.gitMinor=$minor -X $x.gitTreeState=clean"
	done
	scratch_build kube-apiserver "$dir" "k8s.io/kubernetes $KUBE_VERSION" \
		k8s.io/kubernetes/cmd/kube-apiserver "-s -w$ldflags" "$replaces"
}

install_versitygw() {
	local dir=$CACHE/versitygw-$VERSITYGW_VERSION
	have "$dir" versitygw && return
	log "installing versitygw $VERSITYGW_VERSION (about 370 CPU-seconds cold)"
	GOBIN=$dir/bin.tmp go install -trimpath -ldflags "-s -w" github.com/versity/versitygw/cmd/versitygw@"$VERSITYGW_VERSION"
	mv "$dir/bin.tmp" "$dir/bin"
}

install_fakegcs() {
	local dir=$CACHE/fake-gcs-server-$FAKEGCS_VERSION
	have "$dir" fake-gcs-server && return
	log "installing fake-gcs-server $FAKEGCS_VERSION (about 290 CPU-seconds cold)"
	GOBIN=$dir/bin.tmp go install -trimpath -ldflags "-s -w" github.com/fsouza/fake-gcs-server@"$FAKEGCS_VERSION"
	mv "$dir/bin.tmp" "$dir/bin"
}

# go_install NAME VERSION PACKAGE: `go install` into $CACHE/NAME-VERSION/bin.
go_install() {
	local name=$1 version=$2 pkg=$3 dir=$CACHE/$1-$2
	have "$dir" "$name" && return
	log "installing $name $version"
	rm -rf "$dir/bin.tmp"
	GOBIN=$dir/bin.tmp go install -trimpath -ldflags "-s -w" "$pkg@$version"
	mv "$dir/bin.tmp" "$dir/bin"
}

install_azurite() {
	local dir=$CACHE/azurite-$AZURITE_VERSION
	[ -f "$dir/node_modules/azurite/dist/src/blob/main.js" ] && return
	log "installing azurite $AZURITE_VERSION from npm"
	command -v node >/dev/null || apt_install nodejs npm
	rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
	npm install --prefix "$dir.tmp" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2
	rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

apt_updated=
apt_install() {
	log "installing Debian packages: $*"
	if [ -z "$apt_updated" ]; then apt-get update -qq >&2; apt_updated=1; fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

install_debian() {
	local missing=()
	[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
	command -v git >/dev/null || missing+=(git)
	[ -x /usr/lib/git-core/git-http-backend ] || missing+=(git)
	command -v openssl >/dev/null || missing+=(openssl)
	command -v gpg >/dev/null || missing+=(gnupg) # signed-commit tests
	command -v ssh-keygen >/dev/null || missing+=(openssh-client)
	command -v rclone >/dev/null || missing+=(rclone) # the storage sync benchmark's baseline
	command -v chromium >/dev/null || missing+=(chromium) # the dashboard's browser test (chromedp)
	[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# The env file the Go test helpers read: one place that says where each tool is.
# install_flux NAME VERSION [extra go.mod lines]: one of Flux's controllers, built from the
# module proxy inside a scratch module that repeats the controller's own replace lines (but
# its ./api one: the api module it requires is published), with the CRDs its module zip
# carries in config/crd/bases. Not `go mod tidy`: it pulls test-only modules not served here.
install_flux() {
	local name=$1 version=$2 extra=${3:-}
	local dir=$CACHE/$name-$version mod=github.com/fluxcd/$name
	have "$dir" "$name" && [ -d "$dir/crds" ] && return
	log "building Flux $name $version (about 4 CPU-minutes cold)"
	local info gomod moddir replaces
	info=$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "$mod@$version")
	gomod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$info")
	moddir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$info")
	replaces=$(awk '/^replace \(/ {block=1; next} block && /^\)/ {block=0; next}
		block {print "replace " $0; next} /^replace / {print}' "$gomod" | grep -v '=> \./' || true)
	scratch_build "$name" "$dir" "$mod $version" "$mod" "-s -w" "$replaces
$extra"
	mkdir -p "$dir/crds"
	cp "$moddir"/config/crd/bases/*.yaml "$dir/crds/"
	chmod u+w "$dir"/crds/*.yaml
}

# install_peers builds the tools make bench-peers measures Circle against.
install_peers() {
	# source-controller v1.9.6 requires github.com/fluxcd/pkg/artifact v0.18.3, which the
	# module proxy here does not serve; v0.18.0 is, and builds.
	install_flux source-controller "$FLUX_SOURCE_VERSION" "replace github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact v0.18.0"
	install_flux kustomize-controller "$FLUX_KUSTOMIZE_VERSION"
	cat >"$CACHE/peers.env" <<ENV
CIRCLE_PEERS_SOURCE_CONTROLLER=$CACHE/source-controller-$FLUX_SOURCE_VERSION/bin/source-controller
CIRCLE_PEERS_KUSTOMIZE_CONTROLLER=$CACHE/kustomize-controller-$FLUX_KUSTOMIZE_VERSION/bin/kustomize-controller
CIRCLE_PEERS_FLUX_CRDS=$CACHE/source-controller-$FLUX_SOURCE_VERSION/crds:$CACHE/kustomize-controller-$FLUX_KUSTOMIZE_VERSION/crds
CIRCLE_PEERS_FLUX_VERSION=$FLUX_SOURCE_VERSION
ENV
}

write_env() {
	cat >"$CACHE/env" <<ENV
CIRCLE_TESTENV_ETCD=$CACHE/etcd-$ETCD_VERSION/bin/etcd
CIRCLE_TESTENV_KUBE_APISERVER=$CACHE/kube-apiserver-$KUBE_VERSION/bin/kube-apiserver
CIRCLE_TESTENV_VERSITYGW=$CACHE/versitygw-$VERSITYGW_VERSION/bin/versitygw
CIRCLE_TESTENV_FAKE_GCS=$CACHE/fake-gcs-server-$FAKEGCS_VERSION/bin/fake-gcs-server
CIRCLE_TESTENV_AZURITE=$CACHE/azurite-$AZURITE_VERSION/node_modules/azurite/dist/src/blob/main.js
CIRCLE_TESTENV_SSHD=/usr/sbin/sshd
CIRCLE_TESTENV_GIT_HTTP_BACKEND=/usr/lib/git-core/git-http-backend
CIRCLE_TESTENV_SOPS=$CACHE/sops-$SOPS_VERSION/bin/sops
CIRCLE_TESTENV_CUE=$CACHE/cue-$CUE_VERSION/bin/cue
CIRCLE_TESTENV_KUSTOMIZE=$CACHE/kustomize-$KUSTOMIZE_VERSION/bin/kustomize
CIRCLE_TESTENV_RCLONE=/usr/bin/rclone
CIRCLE_TESTENV_CHROMIUM=/usr/bin/chromium
CIRCLE_TESTENV_LOCAL_KMS=$CACHE/local-kms-$LOCAL_KMS_VERSION/bin/local-kms
ENV
	# envtest (controller-runtime) wants both binaries in one folder.
	mkdir -p "$CACHE/kubebuilder-$KUBE_VERSION"
	ln -sf "$CACHE/etcd-$ETCD_VERSION/bin/etcd" "$CACHE/kubebuilder-$KUBE_VERSION/etcd"
	ln -sf "$CACHE/kube-apiserver-$KUBE_VERSION/bin/kube-apiserver" "$CACHE/kubebuilder-$KUBE_VERSION/kube-apiserver"
	echo "KUBEBUILDER_ASSETS=$CACHE/kubebuilder-$KUBE_VERSION" >>"$CACHE/env"
}

start=$(date +%s)
if [ "${1:-}" = peers ]; then
	install_peers
	log "peers ready in $(($(date +%s) - start))s; under $CACHE"
	exit 0
fi
# The paths are known before anything is built; Tool() checks each binary exists.
write_env
install_debian
install_azurite
install_etcd
install_versitygw
install_fakegcs
install_kube_apiserver
go_install sops "$SOPS_VERSION" github.com/getsops/sops/v3/cmd/sops
go_install cue "$CUE_VERSION" cuelang.org/go/cmd/cue
go_install kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5
go_install local-kms "$LOCAL_KMS_VERSION" github.com/nsmithuk/local-kms # about 25 CPU-seconds cold
log "ready in $(($(date +%s) - start))s; tools under $CACHE ($(du -sh "$CACHE" | cut -f1))"
