"""Resources and settings shared by every code location. Never a code location itself."""
