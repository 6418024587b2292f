import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { AddressInfo } from 'net';

import { ServerConnection } from '@jupyterlab/services';

import { NAMESPACE, postJSON, requestAPI } from '../request';

/**
 * What the test server saw of one request.
 */
interface ISeen {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
}

type Answer = (request: ISeen) => { status: number; body: string };

/**
 * A real HTTP server on 127.0.0.1 standing in for the Jupyter server: records the requests
 * and answers with `answer`.
 */
class TestServer {
  seen: ISeen[] = [];
  answer: Answer = () => ({ status: 200, body: '{}' });
  private _server: Server = createServer((req, res) => this._handle(req, res));

  async start(): Promise<void> {
    await new Promise<void>(resolve => this._server.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    await new Promise<void>(resolve => this._server.close(() => resolve()));
  }

  /** Connection settings for a single-user server below `/user/alice/`. */
  settings(token = 'secret-token'): ServerConnection.ISettings {
    const { port } = this._server.address() as AddressInfo;
    return ServerConnection.makeSettings({
      baseUrl: `http://127.0.0.1:${port}/user/alice/`,
      token
    });
  }

  private _handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const seen: ISeen = {
        method: req.method ?? '',
        path: new URL(req.url ?? '/', 'http://127.0.0.1').pathname,
        authorization: req.headers.authorization,
        body: Buffer.concat(chunks).toString('utf8')
      };
      this.seen.push(seen);
      const { status, body } = this.answer(seen);
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(body);
    });
  }
}

describe('requestAPI', () => {
  const server = new TestServer();

  beforeAll(() => server.start());
  afterAll(() => server.stop());
  // requestAPI logs answers that are not JSON; the tests check that instead of printing it
  let consoleError: jest.SpyInstance;
  beforeEach(() => {
    server.seen = [];
    consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => consoleError.mockRestore());

  it('asks a route below {baseUrl}continuum/ with the token and parses the JSON answer', async () => {
    server.answer = () => ({ status: 200, body: '{"job_id": "42", "cores": 2}' });
    const answer = await requestAPI<{ job_id: string; cores: number }>(
      'session',
      {},
      server.settings()
    );
    expect(answer).toEqual({ job_id: '42', cores: 2 });
    expect(server.seen).toEqual([
      {
        method: 'GET',
        path: `/user/alice/${NAMESPACE}/session`,
        authorization: 'token secret-token',
        body: ''
      }
    ]);
  });

  it('posts JSON bodies made by postJSON', async () => {
    server.answer = seen => ({
      status: 201,
      body: JSON.stringify({ echo: JSON.parse(seen.body) })
    });
    const answer = await requestAPI<{ echo: unknown }>(
      'clusters/scale',
      postJSON({ name: 'c1', count: 3 }),
      server.settings()
    );
    expect(server.seen.map(s => [s.method, s.path])).toEqual([
      ['POST', '/user/alice/continuum/clusters/scale']
    ]);
    expect(answer.echo).toEqual({ name: 'c1', count: 3 });
  });

  it.each([
    [
      'the message of a JSON error',
      503,
      '{"message": "The gateway does not answer"}',
      'The gateway does not answer'
    ],
    ['the text of any other error', 500, 'Internal Server Error', 'Internal Server Error']
  ])('throws a ResponseError with %s', async (_, status, body, message) => {
    server.answer = () => ({ status, body });
    const failure = requestAPI('clusters', {}, server.settings());
    await expect(failure).rejects.toBeInstanceOf(ServerConnection.ResponseError);
    await expect(failure).rejects.toMatchObject({ message, response: { status } });
  });

  it('returns the text of an answer that is not JSON', async () => {
    server.answer = () => ({ status: 200, body: 'plain words' });
    await expect(requestAPI('session', {}, server.settings())).resolves.toBe('plain words');
    expect(consoleError).toHaveBeenCalledWith('continuum_lab: not a JSON answer', 'plain words');
  });

  it('throws a NetworkError when the server cannot be reached', async () => {
    const gone = new TestServer();
    await gone.start();
    const settings = gone.settings();
    await gone.stop();
    await expect(requestAPI('session', {}, settings)).rejects.toBeInstanceOf(
      ServerConnection.NetworkError
    );
  });
});
