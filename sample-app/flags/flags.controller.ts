import { Body, Controller, Get, NotFoundException, Param, Put } from '@nestjs/common';
import { FlagNamePipe, type SetFlagDto, SetFlagPipe } from './set-flag.dto.js';
import { type FeatureFlag, FlagsService } from './flags.service.js';

@Controller('flags')
export class FlagsController {
  constructor(private readonly flags: FlagsService) {}

  /** This node's cached flags. */
  @Get()
  list(): FeatureFlag[] {
    return this.flags.list();
  }

  @Get(':name')
  get(@Param('name', FlagNamePipe) name: string): FeatureFlag {
    const flag = this.flags.get(name);
    if (!flag) throw new NotFoundException(`no flag named ${name} on this node`);
    return flag;
  }

  /** Sets a flag on this node and invalidates it on every other node. */
  @Put(':name')
  set(@Param('name', FlagNamePipe) name: string, @Body(SetFlagPipe) body: SetFlagDto) {
    return this.flags.set(name, body.enabled);
  }
}
