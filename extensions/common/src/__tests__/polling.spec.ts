import { errorMessage, PollingModel } from '../index';

/**
 * A model over a list of numbers the test changes.
 */
class Numbers extends PollingModel {
  answer: number[] = [1];
  seconds = 30;
  failure: Error | null = null;
  loads = 0;
  values: number[] | null = null;

  async double(): Promise<number> {
    return this.act(async () => {
      if (this.failure) {
        throw this.failure;
      }
      this.answer = this.answer.map(n => n * 2);
      return this.answer.length;
    });
  }

  protected async load(): Promise<number> {
    this.loads += 1;
    if (this.failure) {
      throw this.failure;
    }
    this.values = [...this.answer];
    return this.seconds;
  }
}

describe('PollingModel', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('refreshes at the interval the server asks for, never faster than 2 s', async () => {
    const model = new Numbers();
    let changes = 0;
    model.changed.connect(() => (changes += 1));
    model.start();
    await jest.advanceTimersByTimeAsync(0);
    expect([model.values, model.refreshSeconds, changes]).toEqual([[1], 30, 1]);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(model.loads).toBe(2);
    model.seconds = 0;
    await model.refresh();
    expect(model.refreshSeconds).toBe(2);
    model.dispose();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(model.loads).toBe(3);
  });

  it('keeps the data on failure, says why, and refreshes after actions', async () => {
    const model = new Numbers();
    await model.refresh();
    expect(await model.double()).toBe(1);
    await jest.advanceTimersByTimeAsync(0);
    expect(model.values).toEqual([2]);
    model.failure = new Error('cannot be reached');
    await expect(model.double()).rejects.toThrow('cannot be reached');
    await jest.advanceTimersByTimeAsync(0);
    expect([model.values, model.error]).toEqual([[2], 'cannot be reached']);
    model.dispose();
  });
});

describe('errorMessage', () => {
  it('turns what was thrown into a message', () => {
    expect(errorMessage(new Error('no'))).toBe('no');
    expect(errorMessage('plain')).toBe('plain');
  });
});
