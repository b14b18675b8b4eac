#!/usr/bin/env node
// The `ferry` command: a committed entry point, so npm links it even before the first build.
import '../dist/cli/main.js';
