import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// The library's API, its testing helper, the Prometheus metrics (optional peers) and the `sluice-worker` bin.
export default defineConfig(library({ index: 'src/index.ts', testing: 'src/testing.ts', prometheus: 'src/prometheus.ts' }, {}, { cli: 'src/cli.ts' }));
