/**
 * The hub's estimate of when a choice of site, partition and resources would start, with the
 * bound of its energy use and emissions (`GET /hub/api/continuum/estimate`, the model of
 * `continuum_spawners.jobs.estimate_model`): the spawn form shows it, and so do the dialogs of
 * the lab extensions.
 */
export interface IEstimate {
  site: string;
  partition: string;
  /** ISO 8601 UTC, or null when the scheduler gave no start. */
  start_time: string | null;
  /** Seconds from now until the expected start; null when unknown. */
  wait_seconds: number | null;
  /** Why there is no estimate (the scheduler's words), or empty. */
  message?: string | null;
  /** Energy if the whole walltime is used (kWh); null when the site publishes no power data. */
  energy_kwh_max: number | null;
  /** Emissions if the whole walltime is used (g CO2e); null likewise. */
  gco2e_max: number | null;
  /** Where the power figures came from (`registry`, or the defaults used). */
  impact_source?: string | null;
  /** For `site=soonest`: every fitting partition, earliest start first. */
  candidates?: IEstimate[];
  /** The user's monthly budgets, `warning` at 80 % of a limit with this request. */
  budgets?: IBudgetStatus[];
  /** Why submitting this would be refused (what is left, when it resets, whom to ask). */
  budget_refusal?: string | null;
}

/**
 * One limit of a monthly budget (`continuum_spawners.budgets.BudgetStatus.as_json`).
 */
export interface IBudgetStatus {
  scope: 'user' | 'vo';
  name: string;
  resource: 'core_hours' | 'gpu_hours' | 'co2e_kg';
  unit: string;
  limit: number;
  used: number;
  left: number;
  /** ISO 8601: when the month ends and the budget starts again. */
  resets: string;
  contact: string;
  warning: boolean;
}

/**
 * What the budgets say of an estimate's request, as the spawn form writes it: the refusal
 * waiting at submit, else a warning per limit at 80 % or more, else nothing.
 *
 * @param model - the hub's estimate
 */
export function budgetLine(model: IEstimate): string {
  if (model.budget_refusal) {
    return model.budget_refusal;
  }
  return (model.budgets ?? [])
    .filter(budget => budget.warning)
    .map(
      budget =>
        `Budget warning: ${budget.scope === 'user' ? 'your' : budget.name} budget has ` +
        `${budget.left} of ${budget.limit} ${budget.unit} left this month (resets ` +
        `${budget.resets.slice(0, 10)}; ${budget.contact})`
    )
    .join(' · ');
}

/**
 * The estimate line, word for word as the spawn form writes it (`FORM_SCRIPT` in
 * `continuum_spawners/form.py`): `Expected start on alpha / batch: in about 5 min · at most
 * 0.2 kWh, 12.5 g CO2e if used in full`, `… : now`, or `No estimate for alpha / batch: …`;
 * then, after `. `, the {@link budgetLine} where there is one.
 *
 * @param model - the hub's estimate
 */
export function estimateLine(model: IEstimate): string {
  const budget = budgetLine(model);
  return startLine(model) + (budget ? `. ${budget}` : '');
}

function startLine(model: IEstimate): string {
  const where = `${model.site} / ${model.partition}`;
  if (model.wait_seconds === null || model.wait_seconds === undefined) {
    return `No estimate for ${where}` + (model.message ? `: ${model.message}` : '');
  }
  const impact =
    model.gco2e_max === null || model.gco2e_max === undefined
      ? ''
      : ` · at most ${model.energy_kwh_max} kWh, ${model.gco2e_max} g CO2e if used in full`;
  const when =
    model.wait_seconds < 60 ? 'now' : `in about ${Math.round(model.wait_seconds / 60)} min`;
  return `Expected start on ${where}: ${when}${impact}`;
}
