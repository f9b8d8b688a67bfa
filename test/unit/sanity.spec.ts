import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';

@Injectable()
class A {
  v = 1;
}
@Injectable()
class B {
  constructor(readonly a: A) {}
}
@Module({ providers: [A, B] })
class M {}

describe('di', () => {
  it('injects by type', async () => {
    const m = await Test.createTestingModule({ imports: [M] }).compile();
    expect(m.get(B).a.v).toBe(1);
    await m.close();
  });
});
