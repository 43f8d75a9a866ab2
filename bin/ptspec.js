#!/usr/bin/env node
// The published entry point: ptspec is TypeScript, run through tsx's loader so the
// sources users read are the sources that run.
import { register } from 'tsx/esm/api';

register();
const { runProcess } = await import('../cli/main.ts');
await runProcess();
