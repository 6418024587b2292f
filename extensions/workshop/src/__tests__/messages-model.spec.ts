import { messagesList, POPUP_LENGTH, popupText } from '../messages-list';
import { ISeenStore, MAX_POPUPS, MessagesModel, storedSeen } from '../messages-model';
import { IMessagesAnswer, IWorkshopMessage } from '../tokens';
import { message } from './fixtures';

/** A hub holding `messages`; answers those after `after`, like the server's route. */
class StandIn {
  messages: IWorkshopMessage[] = [];
  asked: number[] = [];
  failing = false;

  fetch = async (after: number): Promise<IMessagesAnswer> => {
    this.asked.push(after);
    if (this.failing) {
      throw new Error('The hub cannot be reached');
    }
    return { messages: this.messages.filter(m => m.id > after), refresh_seconds: 30 };
  };
}

function memorySeen(): ISeenStore & { value: number } {
  const store = {
    value: 0,
    get: () => store.value,
    set: (id: number) => {
      store.value = id;
    }
  };
  return store;
}

function model(hub: StandIn, seen: ISeenStore): { model: MessagesModel; shown: number[][] } {
  const shown: number[][] = [];
  const messages = new MessagesModel(hub.fetch, seen, popped => {
    shown.push(popped.map(m => m.id));
  });
  return { model: messages, shown };
}

describe('MessagesModel', () => {
  it('asks for what is newer than it holds and pops each message up once', async () => {
    const hub = new StandIn();
    const seen = memorySeen();
    const { model: messages, shown } = model(hub, seen);

    await messages.refresh(); // in no event: one check, nothing shown
    expect(hub.asked).toEqual([0]);
    expect(shown).toEqual([]);
    expect(messages.refreshSeconds).toBe(30);

    hub.messages = [message(3), message(5)];
    await messages.refresh();
    expect(shown).toEqual([[3, 5]]); // oldest first
    expect(messages.messages.map(m => m.id)).toEqual([5, 3]); // the list: newest first
    expect(seen.value).toBe(5);

    await messages.refresh();
    expect(hub.asked).toEqual([0, 0, 5]);
    expect(shown).toHaveLength(1); // nothing new: nothing pops up again

    hub.messages.push(message(8));
    await messages.refresh();
    expect(shown).toEqual([[3, 5], [8]]);
    expect(messages.messages.map(m => m.id)).toEqual([8, 5, 3]);
    messages.dispose();
  });

  it('does not pop up again what another tab or an earlier page showed', async () => {
    const hub = new StandIn();
    hub.messages = [message(1), message(2)];
    const seen = memorySeen();
    seen.value = 2;
    const { model: messages, shown } = model(hub, seen);
    await messages.refresh();
    expect(shown).toEqual([]);
    expect(messages.messages.map(m => m.id)).toEqual([2, 1]); // still listed
    messages.dispose();
  });

  it('pops up only the newest few of many, and lists them all', async () => {
    const hub = new StandIn();
    hub.messages = [1, 2, 3, 4, 5, 6].map(id => message(id));
    const { model: messages, shown } = model(hub, memorySeen());
    await messages.refresh();
    expect(MAX_POPUPS).toBe(3);
    expect(shown).toEqual([[4, 5, 6]]);
    expect(messages.messages).toHaveLength(6);
    messages.dispose();
  });

  it('keeps the list through a failure and says why', async () => {
    const hub = new StandIn();
    hub.messages = [message(1)];
    const { model: messages } = model(hub, memorySeen());
    await messages.refresh();
    hub.failing = true;
    await messages.refresh();
    expect(messages.error).toBe('The hub cannot be reached');
    expect(messages.messages.map(m => m.id)).toEqual([1]);
    messages.dispose();
  });
});

describe('storedSeen', () => {
  it('keeps the newest id in storage, for the next page', () => {
    window.localStorage.clear();
    const first = storedSeen('k', window.localStorage);
    expect(first.get()).toBe(0);
    first.set(7);
    first.set(4); // never backwards
    expect(storedSeen('k', window.localStorage).get()).toBe(7);
  });

  it('remembers for the page when storage refuses', () => {
    const refusing = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      }
    } as unknown as Storage;
    const seen = storedSeen('k', refusing);
    seen.set(3);
    expect(seen.get()).toBe(3);
    expect(storedSeen('k', null).get()).toBe(0);
  });
});

describe('messages as text', () => {
  it('puts the event before the text and cuts long ones', () => {
    expect(popupText(message(1, { text: 'Open\nnotebook 2' }))).toBe(
      'Intro to Dask: Open notebook 2'
    );
    const long = popupText(message(1, { text: 'x'.repeat(500) }));
    expect(long).toHaveLength(POPUP_LENGTH);
    expect(long.endsWith('…')).toBe(true);
  });

  it('lists them newest first with the whole text', () => {
    const now = Date.parse('2026-12-05T09:05:00Z');
    const list = messagesList([message(1), message(2, { text: 'y'.repeat(300) })], now);
    const items = [...list.querySelectorAll('li')];
    expect(items.map(li => li.dataset.message)).toEqual(['2', '1']);
    expect(items[0].querySelector('p')?.textContent).toBe('y'.repeat(300));
    expect(items[1].textContent).toContain('Intro to Dask · alice · 5 minutes ago');
    expect(messagesList([]).textContent).toContain('No messages');
  });
});
