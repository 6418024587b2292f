import { ServerConnection } from '@jupyterlab/services';

import { refusedAsProblem, runParameters } from '../dialogs';
import { run } from './fake-api';

describe('runParameters', () => {
  it('types an earlier run’s parameters from their values for the re-run dialog', () => {
    const parameters = runParameters(run({ parameters: { n: 3, label: 'A', on: true } }));
    expect(parameters.map(p => [p.name, p.type, p.default, p.known])).toEqual([
      ['n', 'int', '3', true],
      ['label', 'str', 'A', true],
      ['on', 'bool', 'true', true]
    ]);
  });
});

describe('refusedAsProblem', () => {
  function refusal(status: number, message: string): ServerConnection.ResponseError {
    return new ServerConnection.ResponseError(new Response('', { status }), message);
  }

  it('turns the service’s 4xx into the form’s problem and passes the rest on', async () => {
    expect(await refusedAsProblem(async () => 'r-1')).toEqual({ result: 'r-1' });
    const refused = await refusedAsProblem(async () => {
      throw refusal(400, "resources: site 'alpha' offers no environment 'x'");
    });
    expect(refused).toEqual({
      errors: { service: "resources: site 'alpha' offers no environment 'x'" }
    });
    await expect(
      refusedAsProblem(async () => {
        throw refusal(502, 'The batch workflows service cannot be reached');
      })
    ).rejects.toThrow('cannot be reached');
  });
});
