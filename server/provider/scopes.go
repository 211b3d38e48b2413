package provider

// scopeDescriptions are the plain words shown to a person deciding whether to link.
var scopeDescriptions = map[string]string{
	"openid":         "Know who you are on this service",
	"profile":        "See your name and username",
	"email":          "See your email address",
	"offline_access": "Stay signed in",
}

// Describe returns a scope's plain-words description for link requests and pages; an
// unknown scope is described by its own name.
func Describe(scope string) string {
	if d, ok := scopeDescriptions[scope]; ok {
		return d
	}
	return "Use the permission “" + scope + "”"
}
