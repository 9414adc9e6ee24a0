"""Development tools: the local LINE emulator and the demo. Nothing in production imports them."""
