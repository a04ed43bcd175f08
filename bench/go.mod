module github.com/airgap-bundle/airgap-bundle/bench

go 1.26.8

require (
	github.com/airgap-bundle/airgap-bundle v0.0.0
	github.com/google/go-containerregistry v0.22.1
	github.com/klauspost/compress v1.20.4
)

require (
	github.com/docker/cli v29.9.0+incompatible // indirect
	github.com/docker/docker-credential-helpers v0.9.10 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	github.com/sirupsen/logrus v1.10.2 // indirect
	go.podman.io/image/v5 v5.42.0 // indirect
	go.podman.io/storage v1.65.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	gotest.tools/v3 v3.5.2 // indirect
)

replace github.com/airgap-bundle/airgap-bundle => ../
