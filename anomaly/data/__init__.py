"""CSV logs -> validated flights -> splits -> windows."""
