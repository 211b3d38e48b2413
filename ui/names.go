package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
)

// deviceLabel words a device for people the same way on every screen, whether
// it is asking to be linked (a LinkRequest's DeviceInfo) or already linked.
type deviceLabel devices.DeviceInfo

// linkedLabel is the label of a linked device.
func linkedLabel(d devices.Device) deviceLabel {
	return deviceLabel{Name: d.Name, Model: d.Model, Kind: d.Kind}
}

// title is the device's name, or "Unnamed TV" and the like when it gave none
// (one phrase per kind: an adjective agrees with its noun in German and Spanish).
func (l deviceLabel) title() string {
	if l.Name != "" {
		return l.Name
	}
	switch l.Kind {
	case devices.KindTV:
		return lang.L("Unnamed TV")
	case devices.KindConsole:
		return lang.L("Unnamed game console")
	case devices.KindKiosk:
		return lang.L("Unnamed kiosk")
	case devices.KindComputer:
		return lang.L("Unnamed computer")
	case devices.KindPhone:
		return lang.L("Unnamed phone")
	}
	return lang.L("Unnamed device")
}

// shortTitle is the title cut to shortTitleLen characters with an ellipsis, for
// places that cannot wrap it, such as a dialog's title, which would otherwise
// grow as wide as the name.
func (l deviceLabel) shortTitle() string {
	t := l.title()
	if r := []rune(t); len(r) > shortTitleLen {
		return strings.TrimSpace(string(r[:shortTitleLen-1])) + "…"
	}
	return t
}

// shortTitleLen is how many characters of a device's name a dialog title shows.
const shortTitleLen = 40

// labelHeading is a device's name as the bold heading of a screen or panel. It
// wraps, breaking a long word if it must, so the whole name is shown and a long
// one never widens the window or pushes buttons out of it.
func labelHeading(text string) *widget.Label {
	l := widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	l.SizeName = theme.SizeNameSubHeadingText
	l.Wrapping = fyne.TextWrapWord
	return l
}

// model is the kind and, when known, the model: "TV · Bravia XR".
func (l deviceLabel) model() string {
	if l.Model != "" {
		return kindName(l.Kind) + " · " + l.Model
	}
	return kindName(l.Kind)
}

// clientName is how an app (OAuth client) is named on screen: the name the
// service sends, else the built-in clients' names (an older service sends
// none for them), else the client's ID.
func clientName(c devices.ClientInfo) string {
	if name := strings.TrimSpace(c.Name); name != "" && name != c.ID {
		return name
	}
	switch c.ID { // the clients every Linkdesk service has built in
	case "linkdesk":
		return "Linkdesk"
	case "linkdesk-kiosk":
		return lang.L("Linkdesk kiosk")
	}
	return c.ID
}

// scopeText is a permission in plain words, or its name when it has no description.
func scopeText(sc devices.Scope) string {
	if sc.Description != "" {
		return sc.Description
	}
	return sc.Name
}

// kindIcon is the theme icon standing for a device kind.
func kindIcon(k devices.DeviceKind) fyne.Resource {
	switch k {
	case devices.KindTV:
		return theme.DesktopIcon()
	case devices.KindConsole:
		return theme.MediaPlayIcon()
	case devices.KindKiosk:
		return theme.ViewFullScreenIcon()
	case devices.KindComputer:
		return theme.ComputerIcon()
	case devices.KindPhone:
		return theme.MediaPhotoIcon()
	}
	return theme.QuestionIcon()
}

// kindName words a device kind for people.
func kindName(k devices.DeviceKind) string {
	switch k {
	case devices.KindTV:
		return lang.L("TV")
	case devices.KindConsole:
		return lang.L("Game console")
	case devices.KindKiosk:
		return lang.L("Kiosk")
	case devices.KindComputer:
		return lang.L("Computer")
	case devices.KindPhone:
		return lang.L("Phone")
	}
	return lang.L("Device")
}

// accountName is how an account is named on screen.
func accountName(me devices.Me) string {
	name := strings.TrimSpace(me.DisplayName)
	if name == "" {
		name = me.Username
	}
	if me.Email != "" && me.Email != name {
		if name == "" {
			return me.Email
		}
		return name + " (" + me.Email + ")"
	}
	return name
}
