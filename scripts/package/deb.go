package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Paths the Debian package installs; the test checks them in the built package.
const (
	debName       = "linkd"
	debMaintainer = "Linkdesk maintainers <linkdesk@users.noreply.github.com>"
	unitPath      = "/lib/systemd/system/linkd.service"
	defaultsPath  = "/etc/default/linkd"
	docDir        = "/usr/share/doc/linkd"
)

// debInfo describes the linkd package: the two static binaries from bin, the systemd
// unit and its settings file (a conffile whose edits upgrades keep), and the docs.
// It depends on nothing (static binaries) and recommends systemd, whose unit
// features (DynamicUser, StateDirectory, ${STATE_DIRECTORY}) need version 240.
func debInfo(root, bin, version string) *nfpm.Info {
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	contents := files.Contents{
		file(filepath.Join(bin, "linkd"), "/usr/bin/linkd", 0o755),
		file(filepath.Join(bin, "linkdevice"), "/usr/bin/linkdevice", 0o755),
		file(filepath.Join(root, "packaging", "linkd.service"), unitPath, 0o644),
		{Source: filepath.Join(root, "packaging", "linkd.default"), Destination: defaultsPath,
			Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		file(filepath.Join(root, "README.md"), docDir+"/README.md", 0o644),
		file(filepath.Join(root, "docs", "packaging.md"), docDir+"/packaging.md", 0o644),
		file(filepath.Join(root, "docs", "replicas.md"), docDir+"/replicas.md", 0o644),
	}
	return nfpm.WithDefaults(&nfpm.Info{
		Name:       debName,
		Arch:       "amd64",
		Platform:   "linux",
		Version:    version,
		Section:    "net",
		Priority:   "optional",
		Maintainer: debMaintainer,
		Homepage:   "https://github.com/linkdesk/linkdesk",
		License:    "see /usr/share/doc/linkd",
		Description: "Linkdesk linking service (OAuth 2.0 device authorization)\n" +
			"linkd links TVs, consoles and kiosks to people's accounts with a short code\n" +
			"(RFC 8628), runs as the hardened systemd service linkd.service, and comes\n" +
			"with linkdevice, a command-line device for trying it out.",
		Overridables: nfpm.Overridables{
			Recommends: []string{"systemd (>= 240)"},
			Contents:   contents,
		},
	})
}

// writeDeb builds the .deb from the binaries in bin into out and returns its path.
func writeDeb(root, bin, version, out string) (string, error) {
	info := debInfo(root, bin, version)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("deb: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(out, deb.Default.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("deb: %w", err)
	}
	return path, f.Close()
}
