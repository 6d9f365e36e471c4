"""Code shared by every nexa component: defined once here, imported everywhere."""
