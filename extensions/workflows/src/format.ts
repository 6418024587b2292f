import { FINAL_STATES, IRun, IRunMember, RunState } from './tokens';

/**
 * Whether nothing more happens to a run in this state.
 *
 * @param state - a run's or member's state
 */
export function isFinal(state: RunState): boolean {
  return FINAL_STATES.includes(state);
}

/**
 * A member's progress through the notebook: `cell 3/7`; empty before the kernel starts.
 *
 * @param member - the member
 */
export function formatProgress(member: Pick<IRunMember, 'cell' | 'cells'>): string {
  if (member.cell === null || member.cell === undefined) {
    return '';
  }
  return member.cells ? `cell ${member.cell}/${member.cells}` : `cell ${member.cell}`;
}

/**
 * How a member (or a single run) is doing, in a few words: `queued (Priority)`,
 * `running · cell 3/7`, `failed at cell 4/7: NameError: …`, `done`.
 *
 * @param member - the member's state, reason and progress
 */
export function describeMember(
  member: Pick<IRunMember, 'state' | 'reason' | 'cell' | 'cells'>
): string {
  const reason = member.reason?.trim() ?? '';
  const progress = formatProgress(member);
  switch (member.state) {
    case 'queued':
    case 'pending':
      return reason ? `${member.state} (${reason})` : member.state;
    case 'running':
      return progress ? `running · ${progress}` : 'running';
    case 'failed': {
      const where = progress ? ` at ${progress}` : '';
      return `failed${where}${reason ? `: ${reason}` : ''}`;
    }
    case 'needs-sign-in':
      return `needs sign-in${reason ? `: ${reason}` : ''}`;
    case 'cancelled':
      return reason ? `cancelled: ${reason}` : 'cancelled';
    default:
      return member.state;
  }
}

/**
 * Members counted by state, in a stable order: `2 done · 1 running`.
 *
 * @param members - a sweep's members
 */
export function countStates(members: Pick<IRunMember, 'state'>[]): string {
  const order: RunState[] = [
    'running',
    'queued',
    'pending',
    'needs-sign-in',
    'done',
    'failed',
    'cancelled'
  ];
  const counts = new Map<RunState, number>();
  for (const member of members) {
    counts.set(member.state, (counts.get(member.state) ?? 0) + 1);
  }
  return order
    .filter(state => counts.has(state))
    .map(state => `${counts.get(state)} ${state}`)
    .join(' · ');
}

/**
 * The state column of a run: a single run as {@link describeMember} (its member's progress,
 * else the run's own state and reason); a sweep as its state with the members counted.
 *
 * @param run - the run
 */
export function describeRun(run: Pick<IRun, 'state' | 'reason' | 'members'>): string {
  const members = run.members ?? [];
  if (members.length <= 1) {
    const member = members[0];
    if (member && member.state === run.state) {
      return describeMember({ ...member, reason: member.reason || run.reason });
    }
    return describeMember({ state: run.state, reason: run.reason, cell: null, cells: null });
  }
  const own = describeMember({ state: run.state, reason: run.reason, cell: null, cells: null });
  return `${own} — ${members.length} members: ${countStates(members)}`;
}

/**
 * Where a run executes: `alpha › batch`.
 *
 * @param run - the run
 */
export function formatWhere(run: Pick<IRun, 'resources'>): string {
  const { site, partition } = run.resources ?? { site: '', partition: '' };
  return partition ? `${site} › ${partition}` : site;
}

/**
 * A parameter value for a table cell: strings as they are, anything else as JSON.
 *
 * @param value - the value
 */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  return value === undefined ? '' : JSON.stringify(value);
}

/**
 * The names of all parameters of a run's members, in first-seen order (the compare table's
 * columns).
 *
 * @param run - the run
 */
export function parameterNames(run: Pick<IRun, 'parameters' | 'members'>): string[] {
  const names: string[] = [];
  const add = (parameters: Record<string, unknown> | undefined) => {
    for (const name of Object.keys(parameters ?? {})) {
      if (!names.includes(name)) {
        names.push(name);
      }
    }
  };
  add(run.parameters);
  for (const member of run.members ?? []) {
    add(member.parameters);
  }
  return names;
}

/**
 * A member's value of a parameter: its own, else the run's common one.
 *
 * @param run - the run
 * @param member - the member
 * @param name - the parameter
 */
export function memberValue(
  run: Pick<IRun, 'parameters'>,
  member: Pick<IRunMember, 'parameters'>,
  name: string
): unknown {
  const own = member.parameters ?? {};
  return name in own ? own[name] : (run.parameters ?? {})[name];
}
