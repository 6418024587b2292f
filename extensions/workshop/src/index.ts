import { addSidePanel, registerContinuumCommand, workshopIcon } from '@continuum-hub/common';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { ServerConnection } from '@jupyterlab/services';

import { confirmAction, showMessages } from './dialogs';
import { InstructorModel } from './instructor-model';
import { IInstructorActions, InstructorPanel } from './instructor-panel';
import { InstructorWatch } from './instructor-watch';
import { popupText } from './messages-list';
import { MessagesModel, storedSeen } from './messages-model';
import { fetchEvents, fetchMessages } from './request';
import { IWorkshopEvent } from './tokens';

export * from './tokens';

/**
 * The command ids of this extension.
 */
export namespace CommandIDs {
  export const messages = 'continuum-workshop:messages';
  export const openPanel = 'continuum-workshop:open-panel';
}

const PANEL_ID = 'continuum-workshop-panel';

/**
 * Messages in every lab: the instructors' messages of the user's running events pop up once
 * each (JupyterLab's notifications) and *Workshop Messages* lists them all, newest first.
 */
const messagesPlugin: JupyterFrontEndPlugin<void> = {
  id: '@continuum-hub/workshop:messages',
  description: "Shows the messages of your workshops' instructors as they arrive.",
  autoStart: true,
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null): void => {
    const key = `continuum-workshop:seen:${ServerConnection.makeSettings().baseUrl}`;
    const model = new MessagesModel(fetchMessages, storedSeen(key), messages => {
      for (const message of messages) {
        Notification.info(popupText(message), {
          autoClose: false,
          actions: [
            {
              label: 'All messages',
              caption: 'Every message of your workshops, newest first',
              callback: () => void app.commands.execute(CommandIDs.messages)
            }
          ]
        });
      }
    });
    registerContinuumCommand(
      app.commands,
      CommandIDs.messages,
      {
        label: 'Workshop Messages',
        caption: "Your workshops' messages, newest first",
        // asks first: opening the list shows what arrived since the last check at once
        execute: async () => {
          await model.refresh();
          await showMessages(model.messages);
        }
      },
      { palette }
    );
    void app.restored.then(() => model.start());
  }
};

/**
 * What the instructor's buttons do: confirmation for *Stop all* and *End event*, the
 * participant's server in a new tab, the outcome as a notification.
 */
function instructorActions(model: InstructorModel): IInstructorActions {
  return {
    event: async (ev: IWorkshopEvent, action, text) => {
      if ((action === 'stop' || action === 'end') && !(await confirmAction(ev, action))) {
        return;
      }
      const answer = await model.run({ event: ev.id, action, text });
      if (action === 'end') {
        const url = answer.attendance_url;
        Notification.success(`${ev.title} has ended.`, {
          autoClose: false,
          actions: url ? [{ label: 'Attendance CSV', callback: () => window.open(url) }] : []
        });
        if (url) {
          window.open(url);
        }
      } else if (action === 'start' || action === 'stop') {
        const who = (action === 'start' ? answer.started : answer.stopped) ?? [];
        const verb = action === 'start' ? 'Starting' : 'Stopped';
        Notification.info(`${verb} ${who.length} servers of ${ev.title}.`, { autoClose: 5000 });
      } else {
        const done = action === 'push' ? 'Material update pushed to' : 'Message sent to';
        Notification.info(`${done} the participants of ${ev.title}.`, { autoClose: 5000 });
      }
    },
    open: async (ev: IWorkshopEvent, user: string) => {
      const answer = await model.run({ event: ev.id, action: 'open', user });
      const url = answer.url;
      if (url && window.open(url, '_blank') === null) {
        // a blocked pop-up: the link in a notification, one click away
        Notification.info(`${user}'s server is shared with you.`, {
          autoClose: false,
          actions: [{ label: 'Open', callback: () => window.open(url, '_blank') }]
        });
      }
    }
  };
}

/**
 * The instructor's *Workshops* panel: added for users who instruct an event, asked at start and
 * again until they do ({@link InstructorWatch}: when the lab regains focus and every few
 * minutes), so that an event made while the lab is open brings the panel without a reload.
 */
const instructorPlugin: JupyterFrontEndPlugin<void> = {
  id: '@continuum-hub/workshop:instructor',
  description: 'The instructor’s panel: participants, start/stop all, material, messages, end.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    mainMenu: IMainMenu | null
  ): void => {
    const addPanel = (): void => {
      const model = new InstructorModel();
      const panel = new InstructorPanel(model, instructorActions(model));
      addSidePanel(
        app,
        panel,
        {
          id: PANEL_ID,
          icon: workshopIcon,
          rank: 950,
          command: CommandIDs.openPanel,
          label: 'Show Workshops',
          caption: 'Your workshops: participants, start/stop all, material, messages, end',
          launcherLabel: 'Workshops'
        },
        { palette, launcher, mainMenu, frontDoorRank: 70 }
      );
      model.start();
    };
    // the hub answers an empty list to anyone who instructs nothing (and refuses without a hub)
    void app.restored.then(
      () => new InstructorWatch(async () => (await fetchEvents()).events.length > 0, addPanel)
    );
  }
};

export default [messagesPlugin, instructorPlugin];
