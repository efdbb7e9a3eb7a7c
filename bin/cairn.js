#!/usr/bin/env node
// Cairn's sources are TypeScript run by Node's built-in type stripping (Node >= 22.18).
import '../src/cli/main.ts';
