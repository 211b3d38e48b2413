# Linkdesk: `make run` tries everything locally, `make test` runs every test.
TAGS := migrated_fynedo
.PHONY: run test build package bench bench-linkd bench-polls fuzz screenshot deps stress-proof trust-dev-ca untrust-dev-ca

run:
	@scripts/run.sh

test:
	scripts/test.sh

deps:
	scripts/deps.sh

build:
	mkdir -p build
	go build -tags $(TAGS) -o build/linkdesk .
	go build -o build/linkd ./cmd/linkd
	CGO_ENABLED=0 go build -o build/linkdevice ./cmd/linkdevice

# build/package/: the linkd .deb (nfpm), Linkdesk.tar.xz (fyne package, with the linkdesk://
# scheme) and the Windows/macOS cross builds; see docs/packaging.md. make test builds them too.
package:
	go run ./scripts/package

bench:
	go test -tags $(TAGS) -run '^$$' -bench . -benchmem ./...

screenshot:
	scripts/xvfb-screenshot.sh

# make test from a fresh clone, three times, with every core kept busy by stress-ng.
stress-proof:
	scripts/stress-proof.sh

# Make this user's browsers (Chromium, Chrome, Firefox: their NSS databases) trust the dev
# CA in .run/data that make run's linkd signs its certificate with; and stop trusting it.
trust-dev-ca:
	scripts/dev-ca.sh trust

untrust-dev-ca:
	scripts/dev-ca.sh untrust

# linkd's polls, approvals and device authorizations per second against references in the
# same run (a bare HTTPS handler, GET /api/v1/me, zitadel's example provider), with wrk
# (installed by apt-get when run as root; see scripts/linkdbench). bench-polls is the old name.
bench-linkd bench-polls:
	go run ./scripts/linkdbench $(BENCH_FLAGS)

# Start-up, memory and idle CPU against a bare Fyne window, under Xvfb (see scripts/startbench).
bench-startup:
	xvfb-run -a go run ./scripts/startbench
