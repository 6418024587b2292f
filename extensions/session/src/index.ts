import { addSidePanel, registerContinuumCommand, sessionIcon } from '@continuum-hub/common';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { IStatusBar } from '@jupyterlab/statusbar';

import { shutdownServer } from './request';
import { SessionModel } from './session-model';
import { SessionPanel } from './session-panel';
import { SessionStatusItem } from './status-item';
import { ISessionModel, IWalltimeWarning } from './tokens';
import { formatRemaining } from './walltime';

export * from './tokens';

/**
 * The command ids of this extension; the hub's own commands come from
 * `@jupyterlab/hub-extension` (File > Hub Control Panel, Log Out).
 */
export namespace CommandIDs {
  export const openPanel = 'continuum-session:open-panel';
  export const stopServer = 'continuum-session:stop-server';
  /** `@jupyterlab/hub-extension`'s command: opens `{hubPrefix}home`. */
  export const hubControlPanel = 'hub:control-panel';
}

const PANEL_ID = 'continuum-session-panel';

/**
 * The hub's control panel, for when `@jupyterlab/hub-extension` is not active.
 */
function hubHome(): string | null {
  const hubPrefix = PageConfig.getOption('hubPrefix');
  return hubPrefix ? PageConfig.getOption('hubHost') + URLExt.join(hubPrefix, 'home') : null;
}

async function openControlPanel(app: JupyterFrontEnd): Promise<void> {
  if (app.commands.hasCommand(CommandIDs.hubControlPanel)) {
    await app.commands.execute(CommandIDs.hubControlPanel);
    return;
  }
  const home = hubHome();
  if (home) {
    window.open(home, '_blank');
  }
}

async function stopServer(app: JupyterFrontEnd): Promise<void> {
  const result = await showDialog({
    title: 'Stop this server?',
    body:
      'The batch job ends with it: unsaved changes and running kernels are lost. ' +
      'Save your work first.',
    buttons: [
      Dialog.cancelButton(),
      Dialog.createButton({ label: 'Save all and stop', displayType: 'warn' })
    ]
  });
  if (!result.button.accept) {
    return;
  }
  if (app.commands.hasCommand('docmanager:save-all')) {
    await app.commands.execute('docmanager:save-all');
  }
  try {
    await shutdownServer();
  } catch (error) {
    Notification.error(`Could not stop the server: ${String(error)}`);
    return;
  }
  const home = hubHome();
  if (home) {
    window.location.href = home;
  } else {
    document.body.textContent = 'The server has stopped. You can close this tab.';
  }
}

function warn(app: JupyterFrontEnd, warning: IWalltimeWarning): void {
  const left = formatRemaining(warning.remainingSeconds);
  Notification.warning(
    `The job's walltime ends in ${left} (less than ${warning.minutes} min): save your work.`,
    {
      autoClose: false,
      actions: [
        {
          label: 'Save all',
          callback: () => void app.commands.execute('docmanager:save-all')
        },
        {
          label: 'Job details',
          callback: () => void app.commands.execute(CommandIDs.openPanel)
        }
      ]
    }
  );
}

/**
 * The session plugin: status-bar item, side panel and walltime warnings.
 */
const plugin: JupyterFrontEndPlugin<ISessionModel> = {
  id: '@continuum-hub/session:plugin',
  description: 'Shows the batch job behind this JupyterLab and warns before its walltime ends.',
  autoStart: true,
  provides: ISessionModel,
  optional: [IStatusBar, ICommandPalette, ILauncher, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    mainMenu: IMainMenu | null
  ): ISessionModel => {
    const model = new SessionModel();
    const panel = new SessionPanel(model, {
      controlPanel: () => void openControlPanel(app),
      stopServer: () => void app.commands.execute(CommandIDs.stopServer)
    });
    addSidePanel(
      app,
      panel,
      {
        id: PANEL_ID,
        icon: sessionIcon,
        rank: 900,
        command: CommandIDs.openPanel,
        label: 'Show Session Job Details',
        caption: 'Site, job, resources and walltime of this session',
        launcherLabel: 'Session'
      },
      { palette, launcher, mainMenu, frontDoorRank: 30 }
    );
    registerContinuumCommand(
      app.commands,
      CommandIDs.stopServer,
      { label: 'Stop Server (end the batch job)…', execute: () => stopServer(app) },
      { palette }
    );
    if (statusBar) {
      const item = new SessionStatusItem(model, () => {
        void app.commands.execute(CommandIDs.openPanel);
      });
      statusBar.registerStatusItem('@continuum-hub/session:status', {
        item,
        align: 'left',
        rank: 100
      });
    }
    model.warning.connect((_, warning) => warn(app, warning));
    void app.restored.then(() => model.start());
    return model;
  }
};

export default plugin;
