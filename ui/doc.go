// Package ui holds Linkdesk's Fyne screens: service setup, sign-in and accounts,
// entering and confirming a device's code, and managing linked devices.
//
// The package does no HTTP and no keyring work of its own. Each screen states the
// small interface it needs (LinkService, DeviceService, SessionService,
// IssuerChecker); main.go adapts the auth and devices packages to them. Network
// work runs off the UI goroutine with a context, and widgets are touched only
// through fyne.Do.
package ui
