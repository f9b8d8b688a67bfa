import { Controller, Get, Header } from '@nestjs/common';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard.page.js';

@Controller()
export class DashboardController {
  /** The live dashboard of this node. */
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', DASHBOARD_CSP)
  @Header('Cache-Control', 'no-store')
  page(): string {
    return DASHBOARD_HTML;
  }
}
