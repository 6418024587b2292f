import { ServerConnection } from '@jupyterlab/services';

import {
  availableFields,
  checkMaxrec,
  emptyForm,
  FormValues,
  formatG,
  pythonString,
  pyvoCode,
  validateForm
} from '../query-form';
import { isQueryable, QueryModel } from '../query-model';
import { entry, FakeAPI, tableEntry } from './fake-api';

const ALL = availableFields(null);

function form(values: Partial<FormValues>, fields = ALL) {
  return validateForm({ ...emptyForm(), ...values }, fields);
}

describe('formatG and pythonString (the service’s and Python’s spelling)', () => {
  it.each([
    [0, '0'],
    [90, '90'],
    [-90, '-90'],
    [360, '360'],
    [1e12, '1e+12'],
    [400.5, '400.5'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [123456789, '1.23457e+08'],
    [Infinity, 'inf'],
    [NaN, 'nan']
  ])('%p → %p', (value, text) => {
    expect(formatG(value)).toBe(text);
  });

  it('quotes text as repr does', () => {
    expect(pythonString('abc')).toBe("'abc'");
    expect(pythonString("it's")).toBe('"it\'s"');
    expect(pythonString('a\'b"c')).toBe("'a\\'b\"c'");
    expect(pythonString('x\ny\\z\u0001')).toBe("'x\\ny\\\\z\\x01'");
  });

  it('writes the pyvo cell as the service does', () => {
    expect(pyvoCode('http://t/tap', "SELECT * FROM t WHERE s = 'x'", 100)).toBe(
      'import pyvo\n\n' +
        "service = pyvo.dal.TAPService('http://t/tap')\n" +
        'result = service.run_sync("SELECT * FROM t WHERE s = \'x\'", maxrec=100)\n' +
        'table = result.to_table()\n' +
        'table\n'
    );
  });
});

describe('validateForm', () => {
  it('builds the form’s request from numbers and ISO times, leaving empty fields out', () => {
    expect(
      form({
        ra: ' 83.6 ',
        dec: '-5.4',
        radius_deg: '1e-1',
        time_from: '2024-01-31',
        band_max: '1400'
      })
    ).toEqual({
      query: { ra: 83.6, dec: -5.4, radius_deg: 0.1, time_from: '2024-01-31', band_max: 1400 }
    });
    expect(form({})).toEqual({ query: {} });
    expect(form({ time_to: '2024-02-29T23:59:59.5+01:00' })).toEqual({
      query: { time_to: '2024-02-29T23:59:59.5+01:00' }
    });
  });

  it.each([
    ['ra', { ra: '400', dec: '0', radius_deg: '1' }, 'ra must be between 0 and 360, not 400'],
    ['dec', { ra: '1', dec: '-91', radius_deg: '1' }, 'dec must be between -90 and 90, not -91'],
    [
      'radius_deg',
      { ra: '1', dec: '1', radius_deg: '90.5' },
      'radius_deg must be between 0 and 90, not 90.5'
    ],
    ['ra', { ra: 'north', dec: '0', radius_deg: '1' }, "ra must be a number, not 'north'"],
    ['ra', { ra: '0x10', dec: '0', radius_deg: '1' }, "ra must be a number, not '0x10'"],
    ['dec', { ra: '1', dec: 'nan', radius_deg: '1' }, 'dec must be between -90 and 90, not nan'],
    ['band_max', { band_max: '1e13' }, 'band_max must be between 0 and 1e+12, not 1e+13'],
    ['band_min', { band_min: '-1' }, 'band_min must be between 0 and 1e+12, not -1'],
    ['radius_deg', { ra: '10', dec: '20' }, 'a cone needs ra, dec and radius_deg (degrees)'],
    [
      'time_from',
      { time_from: '31/01/2024' },
      "time_from must be an ISO 8601 date or time, not '31/01/2024'"
    ],
    [
      'time_to',
      { time_to: '2024-02-30' },
      "time_to must be an ISO 8601 date or time, not '2024-02-30'"
    ]
  ])('says what the service says about %s', (field, values, message) => {
    const checked = form(values as Partial<FormValues>);
    expect('errors' in checked && checked.errors[field as keyof FormValues]).toBe(message);
  });

  it('checks only the fields the table has', () => {
    const cone = availableFields(['dec', 'ra']);
    expect(cone).toEqual(['ra', 'dec', 'radius_deg']);
    expect(availableFields(['time_min', 'time_max', 'band_min'])).toEqual(['time_from', 'time_to']);
    expect(form({ ra: '1', dec: '2', radius_deg: '3', band_min: 'x' }, cone)).toEqual({
      query: { ra: 1, dec: 2, radius_deg: 3 }
    });
  });

  it('bounds the rows asked for by the source’s maxrec', () => {
    expect(checkMaxrec('100', 500)).toBe(100);
    for (const bad of ['0', '501', '1.5', 'all', '']) {
      expect(checkMaxrec(bad, 500)).toEqual({
        error: 'maxrec must be a whole number between 1 and 500'
      });
    }
  });
});

describe('QueryModel', () => {
  it('is offered for TAP tables and services only', () => {
    expect(isQueryable(tableEntry())).toBe(true);
    expect(isQueryable(entry())).toBe(false);
    const service = entry({ kind: 'service', metadata: { tables: ['a.b'] } });
    expect(isQueryable(service)).toBe(true);
    expect(isQueryable(entry({ kind: 'service', metadata: { service: 'x' } }))).toBe(false);
  });

  it('runs the form, keeps the answer and makes its pyvo cell', async () => {
    const api = new FakeAPI();
    const model = new QueryModel(api, tableEntry());
    expect([model.table, model.maxrec, model.mostRows]).toEqual(['radio.observations', '100', 500]);
    expect(model.adql).toBe('SELECT TOP 100 * FROM radio.observations');
    Object.assign(model.values, { ra: '83.6', dec: '22', radius_deg: '2' });
    model.maxrec = '50';
    await model.run();
    expect(api.sourceQueries).toEqual([
      ['radio-tap', { table: 'radio.observations', ra: 83.6, dec: 22, radius_deg: 2, maxrec: 50 }]
    ]);
    expect(model.answer?.rows).toHaveLength(2);
    expect(model.code()).toBe(
      pyvoCode('http://tap.example.org/tap', 'SELECT TOP 101 * FROM radio.observations', 50)
    );
  });

  it('sends nothing while the form is wrong, and shows the service’s refusal', async () => {
    const api = new FakeAPI();
    const model = new QueryModel(api, tableEntry());
    model.values.ra = '361';
    model.maxrec = '9999';
    await model.run();
    expect(api.sourceQueries).toEqual([]);
    expect(model.problems).toEqual({
      ra: 'ra must be between 0 and 360, not 361',
      maxrec: 'maxrec must be a whole number between 1 and 500'
    });
    model.mode = 'adql';
    model.maxrec = '10';
    model.adql = 'DELETE FROM radio.observations';
    api.queryAnswer = new ServerConnection.ResponseError(
      new Response('', { status: 400 }),
      'only a SELECT query is allowed'
    );
    await model.run();
    expect(api.sourceQueries).toEqual([
      ['radio-tap', { adql: 'DELETE FROM radio.observations', maxrec: 10 }]
    ]);
    expect(model.problems).toEqual({});
    expect([model.error, model.answer, model.code()]).toEqual([
      'only a SELECT query is allowed',
      null,
      null
    ]);
    model.adql = '  ';
    await model.run();
    expect(model.problems).toEqual({ adql: 'adql must be a non-empty text' });
  });

  it('lets a service’s table be chosen and asks which fields it has', async () => {
    const api = new FakeAPI();
    api.entries['radio-tap:radio.sky'] = tableEntry({
      identifier: 'radio.sky',
      metadata: { form_fields: ['ra', 'dec'] }
    });
    const service = entry({
      id: 'radio-tap:@service',
      source: 'radio-tap',
      identifier: '@service',
      kind: 'service',
      metadata: {
        service: 'http://tap.example.org/tap',
        tables: ['radio.observations', 'radio.sky']
      }
    });
    const model = new QueryModel(api, service);
    expect([model.tables, model.table, model.mostRows]).toEqual([
      ['radio.observations', 'radio.sky'],
      'radio.observations',
      1000
    ]);
    expect(model.fields).toHaveLength(7); // not known yet: all
    await model.chooseTable('radio.sky');
    expect(api.calls).toContain('entry radio-tap:radio.sky ');
    expect(model.fields).toEqual(['ra', 'dec', 'radius_deg']);
    await model.chooseTable('radio.elsewhere'); // not the service's: ignored
    expect(model.table).toBe('radio.sky');
  });
});
