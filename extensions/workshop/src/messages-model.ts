import { DEFAULT_REFRESH_SECONDS, PollingModel } from '@continuum-hub/common';

import { IMessagesAnswer, IWorkshopMessage } from './tokens';

/** At most this many messages pop up at once (the rest wait in the list). */
export const MAX_POPUPS = 3;

/** How the model asks for messages newer than `after` (the server's route; a stub in tests). */
export type MessagesFetcher = (after: number) => Promise<IMessagesAnswer>;

/**
 * Where the id of the newest message shown to this user is kept, so that each message pops up
 * once: across reloads and across the user's tabs of the same server.
 */
export interface ISeenStore {
  /** The newest id shown (0: none). */
  get(): number;
  /** Remember that messages up to `id` were shown. */
  set(id: number): void;
}

/**
 * A {@link ISeenStore} in the browser's `localStorage` under `key`; where storage is refused
 * (private windows, quotas), messages pop up once per page instead.
 *
 * @param key - the storage key (one per user's server: it names the server's base URL)
 * @param storage - the storage (the window's)
 */
export function storedSeen(key: string, storage: Storage | null = globalStorage()): ISeenStore {
  let kept = 0;
  return {
    get: () => {
      let stored = NaN;
      try {
        stored = Number(storage?.getItem(key) ?? NaN);
      } catch {
        // unreadable storage: the page's own memory below
      }
      return Number.isFinite(stored) ? Math.max(stored, kept) : kept;
    },
    set: (id: number) => {
      kept = Math.max(kept, id);
      try {
        storage?.setItem(key, String(kept));
      } catch {
        // storage refused: kept for this page only
      }
    }
  };
}

function globalStorage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

/**
 * The participant's side: asks for new messages every `refresh_seconds` (one small request
 * when the user is in no event), keeps them newest first, and hands each message not shown
 * before to `notify` once.
 */
export class MessagesModel extends PollingModel {
  /**
   * @param fetch - where messages come from
   * @param seen - the newest message already shown
   * @param notify - shows new messages (oldest first; at most {@link MAX_POPUPS})
   */
  constructor(
    fetch: MessagesFetcher,
    seen: ISeenStore,
    notify: (messages: IWorkshopMessage[]) => void
  ) {
    super();
    this._fetch = fetch;
    this._seen = seen;
    this._notify = notify;
  }

  /** Every message received since the page opened, newest first. */
  get messages(): readonly IWorkshopMessage[] {
    return this._messages;
  }

  protected async load(): Promise<number> {
    const answer = await this._fetch(this._newest);
    const known = new Set(this._messages.map(m => m.id));
    const added = answer.messages.filter(m => !known.has(m.id));
    if (added.length > 0) {
      this._messages = [...added, ...this._messages].sort((a, b) => b.id - a.id);
      this._newest = this._messages[0].id;
      const shown = this._seen.get();
      const unseen = added.filter(m => m.id > shown).sort((a, b) => a.id - b.id);
      if (unseen.length > 0) {
        this._seen.set(unseen[unseen.length - 1].id);
        this._notify(unseen.slice(-MAX_POPUPS));
      }
    }
    return answer.refresh_seconds ?? DEFAULT_REFRESH_SECONDS;
  }

  private _fetch: MessagesFetcher;
  private _seen: ISeenStore;
  private _notify: (messages: IWorkshopMessage[]) => void;
  private _messages: IWorkshopMessage[] = [];
  private _newest = 0;
}
