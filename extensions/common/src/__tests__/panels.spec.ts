import { LabShell, LayoutRestorer } from '@jupyterlab/application';
import { StateDB } from '@jupyterlab/statedb';
import { LabIcon, listIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { LAUNCHER_ARGS } from '../front-door';
import { addSidePanel } from '../panels';

describe('addSidePanel', () => {
  let commands: CommandRegistry;
  let shell: LabShell;

  beforeEach(async () => {
    commands = new CommandRegistry();
    shell = new LabShell();
    // the shell places widgets once the saved layout (here: none, in memory) is restored
    const restorer = new LayoutRestorer({
      connector: new StateDB(),
      first: Promise.resolve(),
      registry: commands
    });
    await shell.restoreLayout('multiple-document', restorer);
    Widget.attach(shell, document.body);
  });

  afterEach(() => shell.dispose());

  const options = {
    id: 'continuum-test-panel',
    icon: listIcon,
    rank: 950,
    command: 'continuum-test:open-panel',
    label: 'Show the Test Panel',
    caption: 'What the test panel shows'
  };

  it('puts the panel in the right side bar, and its command opens it', async () => {
    const panel = new Widget();
    addSidePanel({ commands, shell }, panel, options);
    expect(panel.id).toBe('continuum-test-panel');
    // the side bar shows it restyled (a bound copy of the icon)
    expect((panel.title.icon as LabIcon).name).toBe(listIcon.name);
    expect(Array.from(shell.widgets('right'))).toContain(panel);
    expect(shell.rightCollapsed).toBe(true);

    expect(commands.label(options.command)).toBe('Show the Test Panel');
    expect(commands.caption(options.command)).toBe('What the test panel shows');
    await commands.execute(options.command);
    expect(shell.rightCollapsed).toBe(false);
    expect(panel.isVisible).toBe(true);
  });

  it('names the panel on a Launcher card, with its icon and caption as tooltip', () => {
    const panel = new Widget();
    addSidePanel({ commands, shell }, panel, { ...options, launcherLabel: 'Test panel' });
    expect(commands.label(options.command, LAUNCHER_ARGS)).toBe('Test panel');
    expect(commands.label(options.command)).toBe('Show the Test Panel');
    expect((commands.icon(options.command) as LabIcon).name).toBe(listIcon.name);
    expect(panel.title.caption).toBe('What the test panel shows');
  });

  it('removes the command, not the panel, when disposed', () => {
    const panel = new Widget();
    addSidePanel({ commands, shell }, panel, options).dispose();
    expect(commands.hasCommand(options.command)).toBe(false);
    expect(Array.from(shell.widgets('right'))).toContain(panel);
  });
});
