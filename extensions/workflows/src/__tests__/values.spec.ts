import { gridSize, parseValue, parseValueList, typeOf, valueText } from '../values';

describe('parseValue', () => {
  it.each([
    ['42', 'int', 42],
    [' -7 ', 'int', -7],
    ['0.25', 'float', 0.25],
    ['1e3', 'float', 1000],
    ['True', 'bool', true],
    ['false', 'bool', false],
    ["it's $(rm -rf ~); echo\nhi", 'str', "it's $(rm -rf ~); echo\nhi"],
    ['[1, 2]', 'list', [1, 2]],
    ['{"a": 1}', 'dict', { a: 1 }],
    ['{"a": 1}', 'any', { a: 1 }],
    ['np.arange(3)', 'any', 'np.arange(3)']
  ] as const)('%j as %s → %j', (text, type, value) => {
    expect(parseValue(text, type)).toEqual({ value });
  });

  it.each([
    ['4.5', 'int', 'not a whole number'],
    ['', 'int', 'not a whole number'],
    ['ten', 'float', 'not a number'],
    ['', 'float', 'not a number'],
    ['yes', 'bool', 'not true or false'],
    ['{"a": 1}', 'list', 'not a JSON list'],
    ['[1]', 'dict', 'not a JSON dict']
  ] as const)('%j as %s is refused', (text, type, said) => {
    const parsed = parseValue(text, type);
    expect('error' in parsed && parsed.error).toContain(said);
  });
});

describe('parseValueList', () => {
  it('reads comma-separated values and JSON lists', () => {
    expect(parseValueList('1, 2, 4', 'int')).toEqual({ values: [1, 2, 4] });
    expect(parseValueList(' a , b ', 'str')).toEqual({ values: ['a', 'b'] });
    expect(parseValueList('["a, b", "c"]', 'str')).toEqual({ values: ['a, b', 'c'] });
    expect(parseValueList('[[1], [2, 3]]', 'list')).toEqual({ values: [[1], [2, 3]] });
    expect(parseValueList('  ', 'int')).toEqual({ values: null });
  });

  it('refuses a list with a value of the wrong kind', () => {
    expect(parseValueList('1, x', 'int')).toEqual({ error: '" x" is not a whole number' });
    expect(parseValueList('[]', 'int')).toHaveProperty('error');
  });
});

describe('helpers', () => {
  it('counts grid members and types values', () => {
    expect(gridSize({})).toBe(1);
    expect(gridSize({ a: [1, 2, 3], b: ['x', 'y'] })).toBe(6);
    expect(typeOf(3)).toBe('int');
    expect(typeOf(0.5)).toBe('float');
    expect(typeOf('s')).toBe('str');
    expect(typeOf([1])).toBe('list');
    expect(typeOf({})).toBe('dict');
    expect(typeOf(true)).toBe('bool');
    expect(typeOf(null)).toBe('any');
    expect(valueText([1, 2])).toBe('[1,2]');
    expect(valueText(null)).toBe('');
  });
});
