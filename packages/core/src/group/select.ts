/**
 * Which healthy upstream takes the next message. Pure bookkeeping, no I/O.
 *
 * With weights: smooth weighted round robin (as nginx's upstream module does it): each pick adds every
 * candidate's weight to its running score, takes the highest, and subtracts the total from it. The
 * split is exact over every window of sum(weights) picks (3:1 gives A A B A, A A B A, …) and it is
 * deterministic, so a test can state it. Without weights: the first healthy upstream in list order.
 */
export interface Candidate {
  readonly index: number;
  /** null: no weight given. 0: standby. */
  readonly weight: number | null;
}

export class Selector {
  private readonly scores: number[];
  private readonly weighted: boolean;

  constructor(weights: ReadonlyArray<number | null>) {
    this.scores = weights.map(() => 0);
    this.weighted = weights.some((w) => w !== null);
  }

  /** The index of the upstream for the next message among `healthy` (indexes in list order), or null when none is. */
  pick(healthy: readonly Candidate[]): number | null {
    if (healthy.length === 0) return null;
    if (!this.weighted) return healthy[0]!.index;
    const active = healthy.filter((c) => (c.weight ?? 1) > 0);
    // Only standbys are healthy: the first of them, in list order.
    if (active.length === 0) return healthy[0]!.index;
    let total = 0;
    let best: Candidate | null = null;
    for (const c of active) {
      const w = c.weight ?? 1;
      total += w;
      this.scores[c.index]! += w;
      if (best === null || this.scores[c.index]! > this.scores[best.index]!) best = c;
    }
    this.scores[best!.index]! -= total;
    return best!.index;
  }
}
