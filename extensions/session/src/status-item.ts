import { Widget } from '@lumino/widgets';

import { ISessionModel } from './tokens';
import { formatRemaining } from './walltime';

/**
 * The status-bar item: `site · partition · job N · H:MM:SS left`.
 */
export class SessionStatusItem extends Widget {
  /**
   * @param model - the session model shown
   * @param onClick - what a click does (opens the session panel)
   */
  constructor(model: ISessionModel, onClick: () => void) {
    super();
    this._model = model;
    this.addClass('jp-ContinuumSession-status');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.addEventListener('click', onClick);
    model.changed.connect(this.update, this);
    this.update();
  }

  protected onUpdateRequest(): void {
    this.render();
  }

  /**
   * Write the current state into the node (synchronously; `update()` is deferred).
   */
  render(): void {
    const info = this._model.info;
    const remaining = this._model.remainingSeconds;
    if (info === null) {
      this.node.textContent = this._model.error ? 'Job: unavailable' : 'Job: …';
      this.node.title = this._model.error ?? 'Asking the hub about this job';
      return;
    }
    const parts = [info.site ?? 'unknown site', info.partition ?? 'unknown partition'];
    if (info.job_id) {
      parts.push(`job ${info.job_id}`);
    }
    parts.push(remaining === null ? 'walltime unknown' : `${formatRemaining(remaining)} left`);
    this.node.textContent = parts.join(' · ');
    this.node.dataset.jobId = info.job_id ?? '';
    this.node.dataset.site = info.site ?? '';
    this.node.title =
      `${info.site_label ?? info.site ?? ''} — click for the job's details` +
      (this._model.error ? ` (last refresh failed: ${this._model.error})` : '');
    const warn = info.settings.warning_minutes;
    const urgent = remaining !== null && warn.length > 0 && remaining <= Math.min(...warn) * 60;
    const soon = remaining !== null && warn.length > 0 && remaining <= Math.max(...warn) * 60;
    this.toggleClass('jp-mod-urgent', urgent);
    this.toggleClass('jp-mod-soon', soon && !urgent);
  }

  private _model: ISessionModel;
}
