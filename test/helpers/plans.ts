import { upstreamPlan } from '../../src/primary/plan/build.js';
import { upstreamSchema } from '../../src/shared/config/upstream-schema.js';
import type { UpstreamPlan } from '../../src/shared/plan/types.js';

/**
 * An upstream's plan as the primary builds it from `config` (an `upstreams.<name>` entry,
 * schema defaults filled in), with `overrides` on top: tests that drive a pool or a
 * discovery directly start from the real defaults, not a hand-copied list of them.
 */
export function testUpstreamPlan(
  config: Record<string, unknown> = {},
  overrides: Partial<UpstreamPlan> = {},
): UpstreamPlan {
  const parsed = upstreamSchema.parse({ targets: [{ url: 'http://127.0.0.1:1' }], ...config });
  return { ...upstreamPlan('svc', false, parsed), ...overrides };
}
