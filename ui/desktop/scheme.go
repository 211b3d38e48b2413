package desktop

// SchemeMime is the MIME type under which freedesktop.org systems look up the
// handler of linkdesk:// links.
const SchemeMime = "x-scheme-handler/linkdesk"
