# airgap-bundle. `make check` is what CI runs (.ci/run): the tests plus the
# end-to-end consumer tests; `make demo` is the front door.
GO       ?= go
BIN      ?= bin/airgap-bundle
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS  := -s -w -buildid= -X main.version=$(VERSION) -X main.commit=$(COMMIT) \
	-X github.com/airgap-bundle/airgap-bundle/chart.airgapVersion=$(VERSION)
# containers/image's signature package without cgo: its pure-Go OpenPGP code
# instead of gpgme. Without the tag the tool builds too, but verifies no
# signatures (docs/release.md).
TAGS     := containers_image_openpgp

.PHONY: build helm test e2e check lint fmt demo bench fuzz release install-check release-check
build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/airgap-bundle

# The chart renderer beside the tool (bin/airgap-bundle-helm): lock of a
# spec with [[group.charts]] runs it (docs/charts.md).
helm:
	CGO_ENABLED=0 $(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN)-helm ./cmd/airgap-bundle-helm

test:
	CGO_ENABLED=0 $(GO) test -tags "$(TAGS)" -count=1 ./...

# Real consumers (dockerd, containerd 1.6 and 2.x, k3s's import, podman,
# skopeo) on archives the tool builds. Needs root and Debian's docker.io,
# containerd, podman; builds containerd 2.x once (~2 min).
e2e:
	cd e2e && AIRGAP_E2E=1 $(GO) test -count=1 -timeout 30m ./...

check: lint test fuzz install-check release-check e2e

# Each fuzz target briefly (go test -fuzz takes one package and one target
# per run), 14 targets, about a minute and a half in CI. Crashers land in the package's
# testdata/fuzz/ and then run with every go test. The budget is a count of
# runs, not a duration: with a duration, Go 1.26's fuzzing coordinator can
# report "context deadline exceeded" as a failure when the time runs out
# (golang/go#75804, fixed in Go 1.27). Minimising a new input is capped at
# 20 runs: by default it may take a minute per input, and a short run would
# spend its whole budget there (FuzzRead did).
FUZZTIME ?= 50000x
FUZZ_TARGETS := ./config:FuzzParse ./config:FuzzLocator ./config:FuzzImageList ./config:FuzzManifestImages \
	./lockfile:FuzzParse ./sums:FuzzParse ./delta:FuzzParse ./delta:FuzzParseInventory \
	./archive:FuzzRead ./archive:FuzzParseManifest ./archive:FuzzFilterIndex \
	./trust:FuzzParseReferrers ./chart:FuzzParseIndex ./chart:FuzzParseArchiveMetadata
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "fuzz $$pkg $$name"; \
		CGO_ENABLED=0 $(GO) test -tags "$(TAGS)" -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=20x $$pkg; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...
	$(GO) run ./internal/linkcheck/cmd/linkcheck $$(git ls-files '*.md')

# The README's plain install works: go install of this module without tags
# or cgo, from an empty module cache (needs the Go module proxy).
install-check:
	bash scripts/check-install.sh

# One non-native release binary built twice, the second time from another
# path with an empty build cache, gives the same bytes and says its version.
release-check:
	bash scripts/release.sh --check

# Static binaries for linux/amd64, linux/arm64, darwin/arm64, windows/amd64,
# SHA256SUMS and a CycloneDX SBOM in dist/release/ (docs/release.md).
release:
	GO=$(GO) bash scripts/release.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

# airgap-bundle against crane, regctl, skopeo, docker pull+save and the floor
# (cat + fsync + sha256sum) on three image sets and one local registry; prints
# Markdown tables and PASS/FAIL targets (bench/results/latest.md, .json).
# BENCH_QUICK=1 for a ~10x smaller smoke run. Needs root and Debian's
# docker-registry, skopeo, docker.io, containerd. See bench/README.md.
bench: build
	AIRGAP_BUNDLE=$(abspath $(BIN)) bash bench/run.sh

# The front door: a local registry seeded with demo images, a build from
# examples/demo/bundle.toml, its archives and checksums. No internet needed.
demo: build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/demo-registry ./internal/demoregistry
	AIRGAP_BUNDLE=$(BIN) bash examples/demo/run.sh
