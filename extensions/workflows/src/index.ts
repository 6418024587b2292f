import { addSidePanel, batchRunsIcon, registerContinuumCommand } from '@continuum-hub/common';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  InputDialog,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { runIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { IDisposable } from '@lumino/disposable';

import { chainDialog } from './chain-dialog';
import { rerunDialog, submitDialog } from './dialogs';
import { siteArgument } from './form';
import { RunsModel } from './runs-model';
import { RunsPanel } from './runs-panel';
import { IRun, IRunsModel } from './tokens';

export * from './tokens';

/**
 * The command ids of this extension.
 */
export namespace CommandIDs {
  export const openPanel = 'continuum-workflows:open-panel';
  export const runBatch = 'continuum-workflows:run-batch';
  export const runWorkflow = 'continuum-workflows:run-workflow';
  export const buildWorkflow = 'continuum-workflows:build-workflow';
}

const PANEL_ID = 'continuum-workflows-panel';

async function confirm(title: string, body: string, label: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

function failed(what: string, error: unknown): void {
  Notification.error(`${what}: ${error instanceof Error ? error.message : String(error)}`, {
    autoClose: 10000
  });
}

/**
 * The notebook the command is about: its `path` argument, else (from the file browser's context
 * menu, `fromBrowser`) the selected notebook, else the current notebook.
 */
function notebookPath(
  args: Record<string, unknown>,
  browsers: IFileBrowserFactory | null,
  notebooks: INotebookTracker | null
): string | null {
  if (typeof args.path === 'string' && args.path) {
    return args.path;
  }
  if (args.fromBrowser) {
    return selectedPath(browsers, ['.ipynb']);
  }
  return notebooks?.currentWidget?.context.path ?? null;
}

/**
 * The file browser's selected file when its name ends with one of `suffixes`, else null.
 */
function selectedPath(browsers: IFileBrowserFactory | null, suffixes: string[]): string | null {
  const selected = browsers?.tracker.currentWidget?.selectedItems().next();
  return selected && !selected.done && suffixes.some(s => selected.value.path.endsWith(s))
    ? selected.value.path
    : null;
}

/**
 * Ask for a step's notebook among the user's files: those in the folder of `near` (a path can
 * also be typed); null when cancelled.
 */
async function pickNotebook(app: JupyterFrontEnd, near: string): Promise<string | null> {
  const folder = near.includes('/') ? near.slice(0, near.lastIndexOf('/')) : '';
  let items: string[] = [];
  try {
    const listing = await app.serviceManager.contents.get(folder, { content: true });
    items = (listing.content as { path: string; type: string }[])
      .filter(item => item.type === 'notebook')
      .map(item => item.path)
      .sort();
  } catch {
    items = []; // an unreadable folder: the path is typed
  }
  const answer = await InputDialog.getItem({
    title: 'Add a step: its notebook',
    items: items.length > 0 ? items : [near],
    current: Math.max(0, items.indexOf(near)),
    editable: true
  });
  return answer.button.accept && answer.value ? answer.value.trim() : null;
}

/**
 * The *Run as batch job…* button of every notebook's toolbar.
 */
class RunButtonExtension implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(private _app: JupyterFrontEnd) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new ToolbarButton({
      icon: runIcon,
      label: 'Batch',
      tooltip: 'Run as batch job… (on a site’s batch queue, unattended)',
      onClick: () => {
        void this._app.commands.execute(CommandIDs.runBatch, { path: panel.context.path });
      }
    });
    button.addClass('jp-ContinuumWorkflows-toolbarButton');
    if (!panel.toolbar.insertAfter('cellType', 'continuumRunBatch', button)) {
      panel.toolbar.addItem('continuumRunBatch', button);
    }
    return button;
  }
}

/**
 * The workflows plugin: *Run as batch job…* and the *Batch runs* side panel.
 */
const plugin: JupyterFrontEndPlugin<IRunsModel> = {
  id: '@continuum-hub/workflows:plugin',
  description:
    'Runs a notebook as a batch job (parameters, sweeps) through the hub and lists your batch runs.',
  autoStart: true,
  provides: IRunsModel,
  optional: [ICommandPalette, INotebookTracker, IFileBrowserFactory, ILauncher, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    browsers: IFileBrowserFactory | null,
    launcher: ILauncher | null,
    mainMenu: IMainMenu | null
  ): IRunsModel => {
    const model = new RunsModel();
    const api = model.api;
    const submitted = (run: IRun | null) => {
      if (run) {
        Notification.success(`Batch run ${run.id} submitted (${run.state}).`, {
          autoClose: 5000
        });
        void model.refresh();
        app.shell.activateById(PANEL_ID);
      }
    };
    const panel = new RunsPanel(model, {
      open: async (run, member) => {
        const path = await api.open(run.id, member);
        await app.commands.execute('docmanager:open', { path });
      },
      download: async run => {
        // a link the browser follows itself: the archive streams to disk, not into memory
        const link = document.createElement('a');
        link.href = api.archiveUrl(run.id);
        link.download = `${run.id}.tar.gz`;
        document.body.append(link);
        link.click();
        link.remove();
      },
      cancel: async run => {
        if (
          await confirm('Cancel this run?', `${run.name || run.id}: its job stops.`, 'Cancel run')
        ) {
          await model.cancel(run.id);
        }
      },
      rerun: async run => submitted(await rerunDialog(api, run)),
      workflow: async () => {
        await app.commands.execute(CommandIDs.buildWorkflow, {});
      },
      revoke: async credential => {
        const body =
          `The run ${credential.run_id ?? credential.workflow_id ?? ''} loses its token at the ` +
          'next refresh and shows "credential revoked".';
        if (await confirm('Revoke this credential?', body, 'Revoke')) {
          await model.revoke(credential.id);
        }
      }
    });
    addSidePanel(
      app,
      panel,
      {
        id: PANEL_ID,
        icon: batchRunsIcon,
        rank: 920,
        command: CommandIDs.openPanel,
        label: 'Show Batch Runs',
        caption: 'Your batch runs: state, executed notebooks, cancel, re-run, credentials',
        launcherLabel: 'Batch runs'
      },
      { palette, launcher, mainMenu, frontDoorRank: 40 }
    );
    registerContinuumCommand(
      app.commands,
      CommandIDs.runBatch,
      {
        label: 'Run as Batch Job…',
        caption: 'Run this notebook on a site’s batch queue, with parameters or as a sweep',
        icon: runIcon,
        execute: async args => {
          const path = notebookPath(args, browsers, notebooks);
          if (!path) {
            Notification.warning('Open or select a notebook first.', { autoClose: 5000 });
            return;
          }
          const open = notebooks?.find(nb => nb.context.path === path);
          try {
            if (open?.context.model.dirty) {
              await open.context.save(); // the snapshot is what is on disk
            }
            submitted(await submitDialog(api, path, siteArgument(args)));
          } catch (error) {
            failed(`Could not submit ${path}`, error);
          }
        }
      },
      { palette }
    );
    registerContinuumCommand(
      app.commands,
      CommandIDs.runWorkflow,
      {
        label: 'Run Workflow',
        caption: 'Submit this workflow file (YAML) and the notebooks its steps name',
        icon: runIcon,
        execute: async args => {
          const path =
            typeof args.path === 'string' && args.path
              ? args.path
              : selectedPath(browsers, ['.yaml', '.yml']);
          if (!path) {
            Notification.warning('Select a workflow file (.yaml) first.', { autoClose: 5000 });
            return;
          }
          try {
            const workflow = await api.submitWorkflow(path);
            Notification.success(`Workflow ${workflow.name} submitted (${workflow.id}).`, {
              autoClose: 5000
            });
            void model.refresh();
            app.shell.activateById(PANEL_ID);
          } catch (error) {
            failed(`Could not submit ${path}`, error);
          }
        }
      },
      { palette: null }
    );
    registerContinuumCommand(
      app.commands,
      CommandIDs.buildWorkflow,
      {
        label: 'Workflow…',
        caption: 'Chain notebooks into a workflow, step by step; save it as YAML and run it',
        icon: runIcon,
        execute: async args => {
          const path = notebookPath(args, browsers, notebooks);
          try {
            const result = await chainDialog(
              api,
              { pickNotebook: near => pickNotebook(app, near) },
              path
            );
            if (result) {
              Notification.success(`Workflow file ${result.path} saved.`, { autoClose: 5000 });
              if (result.workflow) {
                void model.refresh();
                app.shell.activateById(PANEL_ID);
              }
            }
          } catch (error) {
            failed('Could not build the workflow', error);
          }
        }
      },
      { palette }
    );
    app.contextMenu.addItem({
      command: CommandIDs.buildWorkflow,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 13,
      args: { fromBrowser: true }
    });
    app.contextMenu.addItem({
      command: CommandIDs.runWorkflow,
      selector: '.jp-DirListing-item[data-file-type="yaml"]',
      rank: 12
    });
    app.contextMenu.addItem({
      command: CommandIDs.runBatch,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 12,
      args: { fromBrowser: true }
    });
    app.docRegistry.addWidgetExtension('Notebook', new RunButtonExtension(app));
    void app.restored.then(() => model.start());
    return model;
  }
};

export default plugin;
